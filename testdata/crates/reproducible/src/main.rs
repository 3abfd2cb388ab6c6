fn main() {
    let words = ["reprobox", "builds", "reproducibly"];
    println!("{}", words.join(" "));
}
