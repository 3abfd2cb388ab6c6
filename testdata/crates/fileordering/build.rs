fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("info.rs"), format!("pub const INFO: &str = {:?};\n", info())).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
fn info() -> String {
    let mut names = Vec::new();
    for e in std::fs::read_dir("assets").unwrap() {
        names.push(e.unwrap().file_name().into_string().unwrap());
    }
    println!("cargo:rerun-if-changed=assets");
    names.join(",")
}
