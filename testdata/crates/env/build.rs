fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("info.rs"), format!("pub const INFO: &str = {:?};\n", info())).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
fn info() -> String {
    let mut vars: Vec<String> = std::env::vars().filter(|(k, _)| k.starts_with("BUILD_")).map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    vars.join(";")
}
