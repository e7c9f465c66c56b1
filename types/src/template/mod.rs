//! The capsule template: Zun's `{"template": {...}}` create request, its model and validation.
//!
//! [`parse_create_body`] and [`parse_template`] turn untrusted JSON (or YAML converted to JSON)
//! into a [`CapsuleTemplate`] or a list of [`FieldError`]s that name the offending JSON path. The
//! rules are Zun's schema (`zun-capsule-api.md` §2) with its gaps closed (§9): init containers
//! get the container schema, boolean strings mean what they say, ports are bounded, mounts must
//! name declared volumes and stay out of `/proc`, `/sys` and `/dev`, numeric strings are
//! converted instead of crashing, and every error is a 400-worthy message rather than a 500.

mod container;
mod errors;
mod image_ref;
mod limits;
mod model;
mod probe;
mod scalars;
mod security;
mod validate;

#[cfg(test)]
mod probe_tests;
#[cfg(test)]
mod validate_tests;

pub use errors::{FieldError, TemplateErrors};
pub use image_ref::{ImageRefError, ImageReference, MAX_IMAGE_REF_LEN};
pub use limits::Limits;
pub use probe::{Probe, ProbeAction};
pub use security::{Capabilities, Capability, SecurityContext};

pub use model::{
    default_security_groups, CapsuleTemplate, ContainerSpec, ImagePullPolicy, PortSpec, Protocol,
    RestartPolicy, VolumeMount, VolumeSource, VolumeSpec,
};

pub use validate::MAX_ANNOTATION_DEPTH;

use serde_json::Value;

/// Parses the whole POST body of `/v1/capsules`: a JSON object whose only key is `template`.
///
/// The `template` value is an object, or a string holding JSON (as Zun accepts), which is parsed
/// and validated the same way. Every problem found is returned, in document order.
pub fn parse_create_body(body: &Value, limits: &Limits) -> Result<CapsuleTemplate, TemplateErrors> {
    validate::create_body(body, limits)
}

/// Validates one template value (the object under `template`).
///
/// Error paths are relative to the template (`spec.containers[0].image`); an error about the
/// template value itself has the path `template`.
pub fn parse_template(
    template: &Value,
    limits: &Limits,
) -> Result<CapsuleTemplate, TemplateErrors> {
    validate::template(template, limits)
}
