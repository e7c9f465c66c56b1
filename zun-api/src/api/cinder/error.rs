//! Errors of the block-storage API in Cinder's shape: `{"<fault>": {"code", "message"}}`, the
//! fault name following the status as Cinder's `Fault` names it (`badRequest`, `itemNotFound`,
//! `overLimit`, ..., `computeFault` for anything else), so clients print them as Cinder's; and
//! the Cinder wording of each [`VolumeError`] of the operations.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use db::volumes::VolumeRefused;
use serde_json::json;

use crate::app::volume::VolumeError;
use crate::error::ErrorChain;

/// Cinder's refusal to delete a volume in the wrong state.
pub const NOT_DELETABLE: &str = "Invalid volume: Volume status must be available or error or \
    error_restoring or error_extending or error_managing and must not be migrating, attached, \
    belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots \
    after volume transfer.";

/// An error answered by the block-storage API.
#[derive(Debug)]
pub struct CinderError {
    status: StatusCode,
    message: String,
}

impl CinderError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 400 for a request body or parameter that fails validation, worded as Cinder's schema
    /// validation words it.
    pub fn invalid(
        field: &str,
        value: impl std::fmt::Display,
        why: impl std::fmt::Display,
    ) -> Self {
        Self::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {value}. {why}"
        ))
    }

    /// Cinder's 404 for a volume.
    pub fn volume_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("Volume {id} could not be found."),
        )
    }

    /// A 404 with this message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// Cinder's 403 for a policy refusal of `action`.
    pub fn forbidden(action: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            format!("Policy doesn't allow {action} to be performed."),
        )
    }

    /// A 500 for something that cannot happen (logged with the request id, not shown).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        let rid = crate::context::current_request_id()
            .map(|r| r.0)
            .unwrap_or_default();
        tracing::error!(request_id = %rid, error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "The server has either erred or is incapable of performing the requested \
                 operation. (request {rid})"
            ),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Cinder's fault name for the status.
    fn fault_name(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "badRequest",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "itemNotFound",
            StatusCode::METHOD_NOT_ALLOWED => "badMethod",
            StatusCode::CONFLICT => "conflictingRequest",
            StatusCode::PAYLOAD_TOO_LARGE => "overLimit",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "badMediaType",
            StatusCode::NOT_IMPLEMENTED => "notImplemented",
            StatusCode::SERVICE_UNAVAILABLE => "serviceUnavailable",
            _ => "computeFault",
        }
    }
}

impl From<VolumeRefused> for CinderError {
    /// Quota refusals are Cinder's 413 (`QuotaError`); a volume larger than the largest allowed
    /// is a 400 here, as the rest of this API's input errors.
    fn from(r: VolumeRefused) -> Self {
        let status = match r {
            VolumeRefused::OverQuota { .. } | VolumeRefused::TooMany { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            VolumeRefused::TooLarge { .. } | VolumeRefused::NotAttachable { .. } => {
                StatusCode::BAD_REQUEST
            }
        };
        Self::new(status, r.to_string())
    }
}

impl From<db::DbError> for CinderError {
    fn from(e: db::DbError) -> Self {
        let rid = crate::context::current_request_id()
            .map(|r| r.0)
            .unwrap_or_default();
        match e {
            db::DbError::MarkerNotFound { marker } => {
                return Self::not_found(format!("Marker {marker} could not be found."));
            }
            db::DbError::VolumeRefused(r) => return r.into(),
            _ => {}
        }
        tracing::error!(request_id = %rid, error = %ErrorChain(&e), "database error");
        if matches!(e, db::DbError::Connect { .. }) {
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is temporarily unavailable.",
            );
        }
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "The server has either erred or is incapable of performing the requested \
                 operation. (request {rid})"
            ),
        )
    }
}

impl From<VolumeError> for CinderError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::Denied { action } => Self::forbidden(action),
            VolumeError::NotFound { id } => Self::volume_not_found(&id),
            VolumeError::UnknownType { name } => {
                Self::not_found(format!("Volume type with name {name} could not be found."))
            }
            VolumeError::TypeNotFound { id } => {
                Self::not_found(format!("Volume type {id} could not be found."))
            }
            VolumeError::InvalidZone { zone } => {
                Self::bad_request(format!("Availability zone '{zone}' is invalid."))
            }
            VolumeError::NotDeletable { capsule } => {
                let mut msg = NOT_DELETABLE.to_owned();
                if let Some(c) = capsule {
                    msg.push_str(&format!(" It is attached to capsule {c}."));
                }
                Self::bad_request(msg)
            }
            VolumeError::NoMetadataKey { id, key } => {
                Self::not_found(format!("Volume {id} has no metadata with key {key}."))
            }
            VolumeError::UnsupportedAction { name } => Self::bad_request(format!(
                "Volume action {name} is not supported by this service."
            )),
            VolumeError::QuotasFixed => Self::bad_request(
                "Quotas of this service are set in zun-api's configuration ([volume] \
                 project_volumes, project_gigabytes, max_size_gib) and apply to every project; \
                 they cannot be changed through the API.",
            ),
            VolumeError::Refused(r) => r.into(),
            VolumeError::Db(e) => e.into(),
            VolumeError::Compute(e) => Self::internal(ErrorChain(e.as_ref())),
        }
    }
}

impl IntoResponse for CinderError {
    fn into_response(self) -> Response {
        let body = json!({ self.fault_name(): {
            "code": self.status.as_u16(),
            "message": self.message,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_and_quota_statuses() {
        assert_eq!(
            CinderError::volume_not_found("x").fault_name(),
            "itemNotFound"
        );
        assert_eq!(
            CinderError::new(StatusCode::NOT_ACCEPTABLE, "v").fault_name(),
            "computeFault"
        );
        let e: CinderError = VolumeRefused::TooMany { quota: 3 }.into();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.fault_name(), "overLimit");
        let e: CinderError = VolumeRefused::TooLarge { size: 9, max: 8 }.into();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
