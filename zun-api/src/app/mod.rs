//! The application layer: what each API operation does, independent of HTTP extraction.

pub mod capsules;
pub mod list_cache;
mod names;
pub mod query;
