include!(concat!(env!("OUT_DIR"), "/info.rs"));
fn main() {
    println!("{INFO}");
}
