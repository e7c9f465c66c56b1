//! The three HTTP APIs, each in the same shape: a folder with its routes (`mod.rs`), thin
//! handlers per resource (parse, one call to `app`, view), its request parsing (`parse`), its
//! views (`view`) and, for Cinder and Neutron, its own error shape (`error`).
//!
//! - [`zun`]: Zun's `/v1` (versions, capsules, container logs, services, hosts);
//! - [`cinder`]: the Cinder v3 subset volumes need, on its own listener;
//! - [`neutron`]: the Neutron v2.0 subset security groups need, on its own listener.

pub mod cinder;
pub mod neutron;
pub mod zun;
