//! Per-request context as the operations see it: the request id (a task-local, so error bodies
//! can name it), the caller's identity and policy credentials, the negotiated microversion and
//! the base URL for links. Part of the crate's ground: it imports no other module of it (the
//! HTTP side, which builds a context from a request, is `http::context`).

use std::future::Future;
use std::sync::Arc;

use capsule_types::microversion::ApiVersion;
use chrono::{DateTime, Utc};

/// The request id, `req-<uuid4>`, echoed in `x-openstack-request-id` and in error bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(format!("req-{}", uuid::Uuid::new_v4()))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `f` as the handling of request `id` ([`current_request_id`] answers `id` inside it).
pub async fn with_request_id<F: Future>(id: RequestId, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// How a caller was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A Keystone token.
    Keystone,
    /// Trusted headers, `[auth] strategy = "noauth"`.
    Noauth,
    /// An OpenID Connect bearer token (a JWT access token of an `[oidc]` issuer).
    Oidc,
}

/// The caller, as a validated token describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// User id.
    pub user_id: String,
    /// User name.
    pub user_name: Option<String>,
    /// User's domain id.
    pub user_domain_id: Option<String>,
    /// Project the token is scoped to (none for domain- or system-scoped tokens).
    pub project_id: Option<String>,
    /// Project name.
    pub project_name: Option<String>,
    /// Project's domain id.
    pub project_domain_id: Option<String>,
    /// Role names on the scope.
    pub roles: Vec<String>,
    /// When the token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// How it was authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// Policy credentials of this identity (`is_admin` still to be computed by the enforcer).
    pub fn credentials(&self) -> policy::Credentials {
        policy::Credentials {
            user_id: Some(self.user_id.clone()),
            project_id: self.project_id.clone(),
            user_domain_id: self.user_domain_id.clone(),
            project_domain_id: self.project_domain_id.clone(),
            roles: self.roles.clone(),
            ..Default::default()
        }
    }

    /// Whether the caller holds the `member` role on a project (OpenStack's
    /// `PROJECT_MEMBER`): what creating and changing resources takes short of admin.
    pub fn is_project_member(&self) -> bool {
        self.project_id.is_some() && self.roles.iter().any(|r| r == "member")
    }
}

/// Everything an operation needs to know about its caller.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Request id.
    pub request_id: RequestId,
    /// Who is calling.
    pub identity: Arc<Identity>,
    /// `context_is_admin` for this caller, computed once.
    pub is_admin: bool,
    /// Negotiated microversion.
    pub version: ApiVersion,
    /// Base URL for links (`http://host:port[/prefix]`, no trailing slash).
    pub base_url: String,
    /// Policy credentials of the caller.
    pub creds: Arc<policy::Credentials>,
}
