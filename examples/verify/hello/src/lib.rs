//! A tiny library shipped as an rlib in the release tarball, as rust-std
//! ships its rlibs.

/// The greeting the binary prints.
pub fn greeting(name: &str) -> String {
    format!("hello, {name}, from a verified release")
}
