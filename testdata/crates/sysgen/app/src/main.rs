fn main() {
    let r = wrapper::Record { id: 7, size: 42 };
    println!("{}", wrapper::serialize(&r));
}
