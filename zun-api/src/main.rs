//! zun-api binary.
fn main() {}
