//! The operations of the three APIs, by resource: each takes the caller's
//! [`RequestContext`](crate::context::RequestContext) and parsed inputs, checks policy and
//! scope, talks to the database and (through `compute`) to compute hosts, and returns domain
//! results or errors. Nothing here knows HTTP: requests are parsed and answers rendered under
//! `api/`. Where an API checks its input only after policy, the operation takes the parse's
//! `Result` and reports a refusal at that point.

pub mod capsule;
pub mod container;
pub mod health;
pub mod host;
pub mod logs;
pub mod quota;
pub mod secgroup;
pub mod secgroup_rule;
pub mod service;
pub mod volume;
pub mod volume_type;
pub mod zone;
