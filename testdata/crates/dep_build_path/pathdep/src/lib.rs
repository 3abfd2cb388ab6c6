//! A dependency that embeds the directory it was built in.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

pub fn data_dir() -> &'static str {
    DATA_DIR
}
