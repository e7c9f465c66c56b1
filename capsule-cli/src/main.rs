//! `capsule`: capsules from a terminal.

fn main() {}
