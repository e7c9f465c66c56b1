//! Pure types shared by the capsule API, compute agent, CLI and tempest (no I/O).

pub mod template;

pub use template::{parse_create_body, parse_template, CapsuleTemplate, Limits, TemplateErrors};

pub mod log_cursor;
pub mod microversion;
pub mod rpc;
pub mod secgroup;
pub mod status;
pub mod views;
pub mod volume;

pub use status::CapsuleStatus;
pub use volume::VolumeStatus;
