fn main() {
    println!("dist fixture");
}
