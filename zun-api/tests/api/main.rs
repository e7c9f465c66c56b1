//! zun-api's integration tests, in one binary with a module per area, so that every helper of
//! the shared harness (`common`: an in-process API over a fresh SQLite database) is used and
//! the crate is linked once: capsules, services and hosts, volumes (Cinder-like API), security
//! groups (Neutron-like API), volume metadata changed at once on SQLite and PostgreSQL,
//! malformed requests, Zun's container routes on capsule containers (lifecycle actions and
//! their history, calls, the interactive exec relay) against a fake compute host
//! (`fake_host`), and authentication with the Keystone and the OpenID Connect provider
//! devstack runs.

mod common;
mod fake_host;

mod capsule_limits;
mod capsules_api;
mod container_actions;
mod container_calls;
mod exec_stream;
mod keystone;
mod keystone_tenancy;
mod malformed_api;
mod metrics;
mod oidc;
mod probes;
mod process;
mod secgroups_api;
mod services_api;
mod volume_metadata;
mod volumes_api;
