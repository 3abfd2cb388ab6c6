// Generates the Record type, like a -sys crate's bindings generator. The
// derive list is collected into a std HashSet, whose RandomState iterates in a
// different order in every process: the generated source, and everything
// built from it, changes from build to build.
use std::collections::HashSet;

fn main() {
    let derives: HashSet<&str> = [
        "Debug", "Clone", "Copy", "PartialEq", "Eq", "PartialOrd", "Ord", "Hash", "Default",
    ]
    .into_iter()
    .collect();
    let list: Vec<&str> = derives.iter().copied().collect();
    let mut src = String::new();
    src.push_str(&format!("#[derive({})]\n", list.join(", ")));
    src.push_str("pub struct Record {\n    pub id: u32,\n    pub size: u64,\n}\n\n");
    src.push_str(&format!("pub const DERIVES: &[&str] = &{:?};\n", list));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("bindings.rs"), src).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
