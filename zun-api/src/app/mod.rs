//! The application layer: what each API operation does, independent of HTTP extraction.

pub mod capsules;
mod names;
pub mod query;
