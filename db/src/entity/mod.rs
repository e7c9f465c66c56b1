//! sea-orm entities, one file per table.

pub mod capsule;
pub mod capsule_container;
pub mod capsule_security_group;
pub mod capsule_template;
pub mod compute_node;
pub mod container_action;
pub mod container_action_event;
pub mod default_security_group;
pub mod firewall_epoch;
pub mod host_port;
pub mod outbox;
pub mod project_generation;
pub mod security_group;
pub mod security_group_rule;
pub mod volume;
pub mod volume_mapping;
pub mod zun_service;
