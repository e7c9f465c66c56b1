//! The application layer: what each API operation does, independent of HTTP extraction.

mod body;
pub mod capsules;
pub mod create;
pub mod dispatch;
pub mod firewall;
pub mod hosts;
pub mod list_cache;
pub mod logs;
mod names;
pub mod query;
pub mod scheduler;
pub mod services;
pub mod volumes;
