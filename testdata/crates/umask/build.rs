fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("info.rs"), format!("pub const INFO: &str = {:?};\n", info())).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
fn info() -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("probe");
    std::fs::write(&p, b"x").unwrap();
    format!("generated files have mode {:o}", std::fs::metadata(&p).unwrap().permissions().mode() & 0o777)
}
