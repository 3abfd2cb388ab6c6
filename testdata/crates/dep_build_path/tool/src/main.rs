fn main() {
    println!("data in {}", pathdep::data_dir());
}
