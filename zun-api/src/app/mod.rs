//! The application layer: what each API operation does, independent of HTTP extraction.

pub mod capsules;
pub mod create;
pub mod hosts;
pub mod logs;
mod names;
pub mod query;
pub mod services;
pub mod volumes;
