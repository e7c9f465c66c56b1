//! Security groups and rules: hostile creates and updates, most of them aimed at a foreign
//! project or a group that does not exist, the rest at the scratch group made for the run;
//! judged by Neutron's rules.

use serde_json::json;

use crate::oracle_network::{group_body, rule_body, Caller};
use crate::stack::Stack;
use crate::strategies::{apply, edit_kind, Deeps, Edit};
use crate::verdict::Verdict;
use crate::wire::{Api, Wire};
use crate::{FOREIGN_PROJECT, NO_GROUP};

pub(crate) const GROUP_LOCS: &[&str] = &[
    "",
    "extra",
    "security_group",
    "security_group.name",
    "security_group.description",
    "security_group.tenant_id",
    "security_group.project_id",
    "security_group.stateful",
    "security_group.id",
    "security_group.security_group_rules",
    "security_group.unknown",
];

pub(crate) const RULE_LOCS: &[&str] = &[
    "",
    "extra",
    "security_group_rule",
    "security_group_rule.security_group_id",
    "security_group_rule.direction",
    "security_group_rule.ethertype",
    "security_group_rule.protocol",
    "security_group_rule.port_range_min",
    "security_group_rule.port_range_max",
    "security_group_rule.remote_ip_prefix",
    "security_group_rule.remote_group_id",
    "security_group_rule.description",
    "security_group_rule.tenant_id",
    "security_group_rule.project_id",
    "security_group_rule.id",
    "security_group_rule.unknown",
];

#[derive(Clone, Debug)]
pub(crate) struct GroupCase {
    /// A valid body may make a real group (otherwise it names a foreign project).
    pub(crate) real: bool,
    /// An update of the scratch group rather than a create.
    pub(crate) update: bool,
    pub(crate) edits: Vec<Edit>,
}

#[derive(Clone, Debug)]
pub(crate) struct RuleCase {
    /// A valid body may make a real rule in the scratch group (otherwise the group does not
    /// exist).
    pub(crate) real: bool,
    pub(crate) edits: Vec<Edit>,
}

impl Stack {
    /// Demo's project and the scratch group, for the judges.
    fn judging<T>(&self, f: impl FnOnce(&Caller<'_>) -> T) -> T {
        let group = self.scratch_group.lock().unwrap().clone();
        f(&Caller {
            project: &self.project,
            group: &group,
        })
    }

    /// The request of a group case, and what it must get.
    pub(crate) fn group_wire(&self, c: &GroupCase) -> (Wire, Verdict) {
        let mut body = if c.update {
            json!({"security_group": {"description": "hostile input"}})
        } else {
            json!({"security_group": {"name": "hostile-input", "description": "hostile input"}})
        };
        if !c.real && !c.update {
            body["security_group"]["tenant_id"] = json!(FOREIGN_PROJECT);
        }
        let mut deeps = Deeps::default();
        apply(&mut body, &c.edits, &mut deeps, &self.marks());
        let judged = self.judging(|caller| group_body(&body, &deeps, c.update, caller));
        let mut kinds: Vec<String> = c.edits.iter().map(edit_kind).collect();
        kinds.push(if c.update { "an update" } else { "a create" }.into());
        let (method, path) = if c.update {
            (
                "PUT",
                format!(
                    "/v2.0/security-groups/{}",
                    self.scratch_group.lock().unwrap()
                ),
            )
        } else {
            ("POST", "/v2.0/security-groups".to_owned())
        };
        let mut w = self.wire(
            Api::Network,
            method,
            path.as_bytes(),
            Some(deeps.render(&body).into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        (w, Verdict::of(judged, kinds))
    }

    /// The request of a rule case, and what it must get.
    pub(crate) fn rule_wire(&self, c: &RuleCase) -> (Wire, Verdict) {
        let group = if c.real {
            self.scratch_group.lock().unwrap().clone()
        } else {
            NO_GROUP.to_owned()
        };
        let mut body = json!({"security_group_rule": {
            "security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 8000, "port_range_max": 8000,
            "remote_ip_prefix": "192.0.2.0/24", "description": "hostile input"}});
        let mut deeps = Deeps::default();
        apply(&mut body, &c.edits, &mut deeps, &self.marks());
        let judged = self.judging(|caller| rule_body(&body, &deeps, caller));
        let kinds = c.edits.iter().map(edit_kind).collect();
        let mut w = self.wire(
            Api::Network,
            "POST",
            b"/v2.0/security-group-rules",
            Some(deeps.render(&body).into_bytes()),
        );
        w.headers
            .push(("Content-Type".into(), b"application/json".to_vec()));
        (w, Verdict::of(judged, kinds))
    }
}
