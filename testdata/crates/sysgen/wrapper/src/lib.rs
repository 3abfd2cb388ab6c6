//! A safe wrapper that serializes records, naming the traits they implement.
pub use gen_sys::Record;

pub fn serialize(r: &Record) -> String {
    format!("{{\"id\":{},\"size\":{},\"traits\":\"{}\"}}", r.id, r.size, gen_sys::DERIVES.join(","))
}
