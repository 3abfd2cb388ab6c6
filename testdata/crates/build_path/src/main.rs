const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
fn main() {
    println!("data in {DATA_DIR}");
}
