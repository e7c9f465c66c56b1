//! sea-orm entities, one file per table.

pub mod capsule;
pub mod capsule_container;
pub mod capsule_security_group;
pub mod compute_node;
pub mod volume_mapping;
pub mod zun_service;
