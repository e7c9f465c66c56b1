//! The `capsule` command's parts: credentials and the Keystone session (`auth`), the API
//! client (`client`), output formats (`output`), the commands, and the errors with their exit
//! codes (`error`).

pub mod auth;
pub mod client;
pub mod commands;
pub mod error;
pub mod locate;
pub mod output;

pub use error::CliError;
