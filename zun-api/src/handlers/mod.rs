//! HTTP handlers: each extracts, calls one function of the app layer and maps the result.

pub mod capsules;
pub mod containers;
pub mod hosts;
pub mod root;
pub mod services;
