//! Wire shapes of API responses as clients read them (CLI, tempest): the capsule view in both
//! microversion families, lists and Zun's error bodies. Lenient on input: unknown keys are
//! ignored and absent keys take defaults, so one struct reads every microversion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A link of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// URL.
    pub href: String,
    /// `self` or `bookmark`.
    pub rel: String,
}

/// Restart policy as shown: an object from 1.32 on, a bare name before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RestartPolicyView {
    /// `{"Name": "always", "MaximumRetryCount": "0"}`.
    Object {
        /// `always`, `on-failure` or `no`.
        #[serde(rename = "Name")]
        name: String,
        /// Retry limit, as a string of digits.
        #[serde(rename = "MaximumRetryCount")]
        maximum_retry_count: String,
    },
    /// Legacy views: the name only.
    Name(String),
}

impl RestartPolicyView {
    /// The policy name in either form.
    pub fn name(&self) -> &str {
        match self {
            RestartPolicyView::Object { name, .. } | RestartPolicyView::Name(name) => name,
        }
    }
}

/// A container of a capsule as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapsuleContainer {
    /// Id.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command (template `command` followed by `args`).
    pub command: Vec<String>,
    /// Status.
    pub status: String,
    /// Why.
    pub status_reason: Option<String>,
    /// Operation in progress.
    pub task_state: Option<String>,
    /// CPU request.
    pub cpu: Option<f64>,
    /// Memory request in MiB, as a string.
    pub memory: Option<String>,
    /// Environment.
    pub environment: BTreeMap<String, String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Container ports.
    pub ports: Vec<u32>,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicyView>,
    /// Times restarted by its restart policy.
    pub restart_count: Option<u32>,
    /// Exit code of its last exit.
    pub exit_code: Option<i32>,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Admin only.
    pub image_pull_policy: Option<String>,
    /// Creation time (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC).
    pub created_at: Option<String>,
    /// Update time.
    pub updated_at: Option<String>,
}

/// A capsule as the API shows it, in either view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capsule {
    /// Id.
    pub uuid: String,
    /// Links.
    pub links: Vec<Link>,
    /// Name (`meta_name` in legacy views).
    #[serde(alias = "meta_name")]
    pub name: Option<String>,
    /// Labels (`meta_labels` in legacy views).
    #[serde(alias = "meta_labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    pub annotations: Option<Value>,
    /// Status.
    pub status: String,
    /// Why.
    pub status_reason: Option<String>,
    /// Operation in progress (not shown by Zun; shown here).
    pub task_state: Option<String>,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicyView>,
    /// Summed CPU.
    pub cpu: Option<f64>,
    /// Summed memory in MiB, as a string.
    pub memory: Option<String>,
    /// Addresses by network.
    pub addresses: Option<Value>,
    /// Application containers.
    pub containers: Vec<CapsuleContainer>,
    /// Init containers.
    pub init_containers: Vec<CapsuleContainer>,
    /// Security groups.
    pub security_groups: Vec<String>,
    /// Owning project.
    pub project_id: String,
    /// Creating user.
    pub user_id: String,
    /// Compute host (admin only).
    pub host: Option<String>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Update time.
    pub updated_at: Option<String>,
}

/// `GET /v1/capsules`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapsuleList {
    /// One page.
    pub capsules: Vec<Capsule>,
    /// URL of the next page, if this one was full.
    #[serde(default)]
    pub next: Option<String>,
}

/// One error of Zun's error body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorItem {
    /// Request id.
    pub request_id: String,
    /// `container.<kind>`.
    pub code: String,
    /// HTTP status.
    pub status: u16,
    /// Short title.
    pub title: String,
    /// The message.
    pub detail: String,
    /// Always empty.
    pub links: Vec<Value>,
}

/// Zun's error body: `{"errors": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The errors (one in practice).
    pub errors: Vec<ErrorItem>,
}
