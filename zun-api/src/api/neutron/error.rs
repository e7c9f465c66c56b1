//! Errors of the network API in Neutron's shape: `{"NeutronError": {"type", "message",
//! "detail"}}`, so the openstack client prints them as it prints Neutron's; and the Neutron
//! wording of each [`SecgroupError`] of the operations.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use capsule_types::secgroup::NeutronError;

use crate::app::secgroup::SecgroupError;
use crate::error::ErrorChain;

/// An error answered by the network API.
#[derive(Debug)]
pub struct NetError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl NetError {
    /// An error with this status, Neutron exception name and message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    /// Neutron's 404 for a security group.
    pub fn group_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SecurityGroupNotFound",
            format!("Security group {id} does not exist"),
        )
    }

    /// Neutron's 404 for a rule.
    pub fn rule_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "SecurityGroupRuleNotFound",
            format!("Security group rule {id} does not exist"),
        )
    }

    /// Neutron's 403 for a policy refusal.
    pub fn forbidden(rule: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            format!("rule:{rule} is disallowed by policy"),
        )
    }

    /// A 400 for a query parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }
}

impl From<NeutronError> for NetError {
    fn from(e: NeutronError) -> Self {
        Self {
            status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            kind: e.kind,
            message: e.message,
        }
    }
}

impl From<db::DbError> for NetError {
    fn from(e: db::DbError) -> Self {
        let rid = crate::context::current_request_id()
            .map(|r| r.0)
            .unwrap_or_default();
        tracing::error!(request_id = %rid, error = %ErrorChain(&e), "database error");
        if matches!(e, db::DbError::Connect { .. }) {
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The database is temporarily unavailable.",
            );
        }
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "HTTPInternalServerError",
            format!("Request Failed: internal server error while processing your request ({rid})."),
        )
    }
}

impl From<SecgroupError> for NetError {
    fn from(e: SecgroupError) -> Self {
        match e {
            SecgroupError::Denied { rule } => Self::forbidden(rule),
            SecgroupError::GroupNotFound { id } => Self::group_not_found(&id),
            SecgroupError::RuleNotFound { id } => Self::rule_not_found(&id),
            SecgroupError::ForeignProject => Self::new(
                StatusCode::FORBIDDEN,
                "HTTPForbidden",
                "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
            ),
            SecgroupError::NoProject => Self::bad_request(
                "A project-scoped token is needed to create security groups and rules.",
            ),
            SecgroupError::CannotUpdateDefault => Self::new(
                StatusCode::CONFLICT,
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            ),
            SecgroupError::DefaultExists => Self::new(
                StatusCode::CONFLICT,
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ),
            SecgroupError::InUse { id } => Self::new(
                StatusCode::CONFLICT,
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ),
            SecgroupError::CannotRemoveDefault => Self::new(
                StatusCode::CONFLICT,
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ),
            SecgroupError::RuleExists { rule_id } => Self::new(
                StatusCode::CONFLICT,
                "SecurityGroupRuleExists",
                format!("Security group rule already exists. Rule id is {rule_id}."),
            ),
            SecgroupError::Db(e) => e.into(),
        }
    }
}

impl IntoResponse for NetError {
    fn into_response(self) -> Response {
        let body = NeutronError {
            status: self.status.as_u16(),
            kind: self.kind,
            message: self.message,
        }
        .body();
        (self.status, axum::Json(body)).into_response()
    }
}
