// Two independent culprits whose values never reach the output as such: a
// cache key derived from the mode of a file the build script writes (umask)
// and another from the thread count it tunes for (num_cpus), each hashed.
fn main() {
    use std::os::unix::fs::PermissionsExt;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let probe = out.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    let mode = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    let threads = std::thread::available_parallelism().unwrap().get();
    let keys = format!(
        "pub const KEYS: [u64; 2] = [{:#x}, {:#x}];\n",
        fnv(&mode.to_le_bytes()),
        fnv(&threads.to_le_bytes())
    );
    std::fs::write(out.join("keys.rs"), keys).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
