//! Raw generated types.
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
