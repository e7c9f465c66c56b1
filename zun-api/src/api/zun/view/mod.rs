//! Zun's views: capsules as Zun shows them (the current view, >= 1.32, and the legacy one, with
//! fields hidden per policy, written straight from the database records), what container
//! calls answer, container actions, compute hosts and services, and Zun's datetime format.

mod capsule;
pub mod container;
pub mod container_action;
pub mod host;
pub mod service;
mod time;

pub use capsule::{capsule_json, capsule_list_json, ViewMask};
pub use time::zun_time;
