//! The default rules: Zun's (as registered in `zun/common/policies/*.py`) that this service
//! consults, plus this service's own rules for what Zun lacks (force delete, security groups,
//! volumes).

/// Zun's `ROLE_ADMIN`.
pub const ROLE_ADMIN: &str = "role:admin";
/// Zun's `RULE_ADMIN_OR_OWNER`; inlined into rules rather than referenced as `rule:`.
pub const RULE_ADMIN_OR_OWNER: &str = "is_admin:True or project_id:%(project_id)s";
/// Admin, or a `member` of the owning project: the secure-RBAC `PROJECT_MEMBER` default of
/// Nova, Neutron and Cinder. Zun checks only the project, so its `reader`s could create and delete
/// capsules; ours may not (a deliberate deviation, see docs/zun-compatibility.md).
pub const RULE_ADMIN_OR_PROJECT_MEMBER: &str =
    "is_admin:True or (role:member and project_id:%(project_id)s)";
/// Zun's `RULE_ADMIN_API`.
pub const RULE_ADMIN_API: &str = "rule:context_is_admin";
/// Zun's `RULE_DENY_EVERYBODY`.
pub const RULE_DENY_EVERYBODY: &str = "rule:deny_everybody";

/// Prefix of the view field filters on capsules: `capsule:get:<field>` hides `<field>` when it
/// fails; fields without such a rule are shown.
pub const CAPSULE_FIELD_PREFIX: &str = "capsule:get:";
/// Prefix of the view field filters on a capsule's containers: `container:get_one:<field>`.
pub const CONTAINER_FIELD_PREFIX: &str = "container:get_one:";

/// Where a default comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Registered by Zun with this name and check string.
    Zun,
    /// Added by this service; Zun has no such rule.
    Ours,
}

/// An API operation a rule guards (oslo's `DocumentedRuleDefault.operations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// HTTP method, e.g. `GET`.
    pub method: &'static str,
    /// URL path template, e.g. `/v1/capsules/{capsule_ident}`.
    pub path: &'static str,
}

/// A rule registered in code, with its documentation (oslo's `DocumentedRuleDefault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDefault {
    /// Rule name, e.g. `capsule:create`.
    pub name: &'static str,
    /// Default check string.
    pub check_str: &'static str,
    /// What the rule allows, for the sample policy file.
    pub description: &'static str,
    /// The API operations it guards (empty for base rules that others reference).
    pub operations: &'static [Operation],
    /// Whether Zun or this service defines it.
    pub origin: Origin,
}

/// All default rules, in the order the sample file lists them.
pub fn defaults() -> &'static [RuleDefault] {
    DEFAULTS
}

/// The default rule named `name`, if one is registered.
pub fn find(name: &str) -> Option<&'static RuleDefault> {
    DEFAULTS.iter().find(|d| d.name == name)
}

/// The field filter rule for capsule field `field` (`capsule:get:<field>`).
pub fn capsule_field_rule(field: &str) -> String {
    format!("{CAPSULE_FIELD_PREFIX}{field}")
}

/// The field filter rule for container field `field` (`container:get_one:<field>`).
pub fn container_field_rule(field: &str) -> String {
    format!("{CONTAINER_FIELD_PREFIX}{field}")
}

const fn op(method: &'static str, path: &'static str) -> Operation {
    Operation { method, path }
}

const fn zun(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
    operations: &'static [Operation],
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        operations,
        origin: Origin::Zun,
    }
}

const fn ours(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
    operations: &'static [Operation],
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        operations,
        origin: Origin::Ours,
    }
}

const CAPSULES: &str = "/v1/capsules";
const CAPSULES_SLASH: &str = "/v1/capsules/";
const CAPSULE: &str = "/v1/capsules/{capsule_ident}";

/// The capsule views that show nested container fields.
const CAPSULE_VIEWS: &[Operation] = &[
    op("GET", CAPSULE),
    op("GET", CAPSULES),
    op("POST", CAPSULES),
];

const SG: &str = "/v1/security_groups";
const SG_ONE: &str = "/v1/security_groups/{security_group_id}";
const SGR: &str = "/v1/security_group_rules";
const SGR_ONE: &str = "/v1/security_group_rules/{security_group_rule_id}";
const VOL: &str = "/v1/volumes";
const VOL_ONE: &str = "/v1/volumes/{volume_id}";

static DEFAULTS: &[RuleDefault] = &[
    // Base rules (zun/common/policies/base.py). Zun gives only `deny_everybody` a description.
    zun(
        "context_is_admin",
        ROLE_ADMIN,
        "Decides who is an admin. Evaluated once per request to set the `is_admin` credential.",
        &[],
    ),
    zun(
        "admin_or_owner",
        RULE_ADMIN_OR_OWNER,
        "Admin, or a member of the project that owns the resource. Zun's rules inline this \
         check string instead of referencing it, so overriding it changes nothing else.",
        &[],
    ),
    zun(
        "admin_api",
        RULE_ADMIN_API,
        "Admin-only API. Zun's rules inline `rule:context_is_admin` instead of referencing this.",
        &[],
    ),
    zun(
        "deny_everybody",
        "!",
        "Default rule for deny everybody.",
        &[],
    ),
    // Containers (zun/common/policies/container.py): the rules consulted for capsule containers.
    zun(
        "container:create:runtime",
        RULE_ADMIN_API,
        "Create a new container with specified runtime.",
        &[op("POST", "/v1/containers")],
    ),
    zun(
        "container:create:privileged",
        RULE_DENY_EVERYBODY,
        "Create a new privileged container. Warning: a privileged container is a big \
         security risk; be careful before enabling this.",
        &[op("POST", "/v1/containers")],
    ),
    zun(
        "container:create:image_pull_policy",
        RULE_ADMIN_API,
        "Create a new container with specified image pull policy. For a capsule the policy is \
         dropped (not refused) when this fails.",
        &[op("POST", "/v1/containers"), op("POST", CAPSULES)],
    ),
    zun(
        "container:get_one:host",
        RULE_ADMIN_API,
        "Retrieve the host field of containers (also those inside capsules).",
        CAPSULE_VIEWS,
    ),
    zun(
        "container:get_one:image_pull_policy",
        RULE_ADMIN_API,
        "Retrieve the image_pull_policy field of containers (also those inside capsules).",
        CAPSULE_VIEWS,
    ),
    zun(
        "container:get_one:privileged",
        RULE_ADMIN_API,
        "Retrieve the privileged field of containers (also those inside capsules).",
        CAPSULE_VIEWS,
    ),
    zun(
        "container:get_one:runtime",
        RULE_ADMIN_API,
        "Retrieve the runtime field of containers (also those inside capsules).",
        CAPSULE_VIEWS,
    ),
    zun(
        "container:get_one_all_projects",
        RULE_ADMIN_API,
        "Retrieve the details of a specific container from all projects (admins find any \
         project's capsule containers by uuid or name for the container routes).",
        &[op("GET", "/v1/containers/{container_ident}")],
    ),
    zun(
        "container:logs",
        RULE_ADMIN_OR_OWNER,
        "Get the log of a container.",
        &[op("GET", "/v1/containers/{container_ident}/logs")],
    ),
    // What is done to a container changes it: project members and admins (Zun: the owner's
    // readers too). Reading its processes, figures and history: the owner, readers included.
    zun(
        "container:execute",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Execute command in a running container.",
        &[op("POST", "/v1/containers/{container_ident}/execute")],
    ),
    zun(
        "container:execute_resize",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Resize the TTY used by an execute command.",
        &[op(
            "POST",
            "/v1/containers/{container_ident}/execute_resize",
        )],
    ),
    zun(
        "container:start",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Start a container.",
        &[
            op("POST", "/v1/containers/{container_ident}/start"),
            op("POST", "/v1/capsules/{capsule_ident}/start"),
        ],
    ),
    zun(
        "container:stop",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Stop a container.",
        &[
            op("POST", "/v1/containers/{container_ident}/stop"),
            op("POST", "/v1/capsules/{capsule_ident}/stop"),
        ],
    ),
    zun(
        "container:reboot",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Reboot a container.",
        &[
            op("POST", "/v1/containers/{container_ident}/reboot"),
            op("POST", "/v1/capsules/{capsule_ident}/restart"),
        ],
    ),
    zun(
        "container:kill",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Kill a running container.",
        &[op("POST", "/v1/containers/{container_ident}/kill")],
    ),
    zun(
        "container:pause",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Pause a container.",
        &[op("POST", "/v1/containers/{container_ident}/pause")],
    ),
    zun(
        "container:unpause",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Unpause a container.",
        &[op("POST", "/v1/containers/{container_ident}/unpause")],
    ),
    zun(
        "container:get_archive",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Get a tar archive of a path of container.",
        &[op("GET", "/v1/containers/{container_ident}/get_archive")],
    ),
    zun(
        "container:put_archive",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Put a tar archive to be extracted to a path of container.",
        &[op("POST", "/v1/containers/{container_ident}/put_archive")],
    ),
    zun(
        "container:top",
        RULE_ADMIN_OR_OWNER,
        "Display the running processes inside the container.",
        &[op("GET", "/v1/containers/{container_ident}/top")],
    ),
    zun(
        "container:stats",
        RULE_ADMIN_OR_OWNER,
        "Display the statistics of a container.",
        &[op("GET", "/v1/containers/{container_ident}/stats")],
    ),
    // Container actions (zun/common/policies/container_action.py).
    zun(
        "container:actions",
        RULE_ADMIN_OR_OWNER,
        "List actions and show action details for a container.",
        &[
            op("GET", "/v1/containers/{container_ident}/container_actions/"),
            op(
                "GET",
                "/v1/containers/{container_ident}/container_actions/{request_id}",
            ),
        ],
    ),
    zun(
        "container:action:events",
        RULE_ADMIN_API,
        "Add events details in action details for a container.",
        &[op(
            "GET",
            "/v1/containers/{container_ident}/container_actions/{request_id}",
        )],
    ),
    // Services (zun/common/policies/zun_service.py).
    zun(
        "zun-service:delete",
        RULE_ADMIN_API,
        "Delete a service.",
        &[op("DELETE", "/v1/services")],
    ),
    zun(
        "zun-service:disable",
        RULE_ADMIN_API,
        "Disable a service.",
        &[op("PUT", "/v1/services/disable")],
    ),
    zun(
        "zun-service:enable",
        RULE_ADMIN_API,
        "Enable a service.",
        &[op("PUT", "/v1/services/enable")],
    ),
    zun(
        "zun-service:force_down",
        RULE_ADMIN_API,
        "Forcibly shutdown a service.",
        &[op("PUT", "/v1/services/force_down")],
    ),
    zun(
        "zun-service:get_all",
        RULE_ADMIN_API,
        "Show the status of a service.",
        &[op("GET", "/v1/services")],
    ),
    // Hosts (zun/common/policies/host.py).
    zun(
        "host:get_all",
        RULE_ADMIN_API,
        "List all compute hosts.",
        &[op("GET", "/v1/hosts")],
    ),
    zun(
        "host:get",
        RULE_ADMIN_API,
        "Show the details of a specific compute host.",
        &[op("GET", "/v1/hosts/{host_ident}")],
    ),
    // Capsules (zun/common/policies/capsule.py).
    zun(
        "capsule:create",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Create a capsule.",
        &[op("POST", CAPSULES_SLASH)],
    ),
    zun(
        "capsule:delete",
        RULE_ADMIN_OR_PROJECT_MEMBER,
        "Delete a capsule.",
        &[op("DELETE", CAPSULE)],
    ),
    zun(
        "capsule:delete_all_projects",
        RULE_ADMIN_API,
        "Delete a capsule in any project (`all_projects`).",
        &[op("DELETE", CAPSULE)],
    ),
    zun(
        "capsule:get",
        RULE_ADMIN_OR_OWNER,
        "Retrieve the details of a capsule.",
        &[op("GET", CAPSULE)],
    ),
    zun(
        "capsule:get:host",
        RULE_ADMIN_API,
        "Retrieve the host field of a capsule.",
        &[
            op("GET", CAPSULE),
            op("GET", CAPSULES),
            op("POST", CAPSULES),
        ],
    ),
    zun(
        "capsule:get_one_all_projects",
        RULE_ADMIN_API,
        "Retrieve the details of a capsule in any project.",
        &[op("GET", CAPSULE)],
    ),
    zun(
        "capsule:get_all",
        RULE_ADMIN_OR_OWNER,
        "List all capsules.",
        &[op("GET", CAPSULES_SLASH)],
    ),
    zun(
        "capsule:get_all_all_projects",
        RULE_ADMIN_API,
        "List all capsules across projects.",
        &[op("GET", CAPSULES_SLASH)],
    ),
    // Networks (zun/common/policies/network.py).
    zun(
        "network:attach_external_network",
        ROLE_ADMIN,
        "Attach an unshared external network to a container (or capsule).",
        &[op("POST", "/v1/containers"), op("POST", CAPSULES)],
    ),
    // Ours.
    ours(
        "capsule:force_delete",
        RULE_ADMIN_API,
        "Delete a capsule with `force`: remove its records even when its compute host is down \
         or does not answer.",
        &[op("DELETE", CAPSULE)],
    ),
    ours(
        "capsule:create:net_raw",
        RULE_ADMIN_API,
        "Create a capsule with a container that adds CAP_NET_RAW \
         (`securityContext.capabilities.add: [NET_RAW]`): raw and packet sockets, with which a \
         tenant can forge any packet on the capsule network.",
        &[op("POST", CAPSULES_SLASH)],
    ),
    ours(
        "security_group:get",
        RULE_ADMIN_OR_OWNER,
        "Show a security group.",
        &[op("GET", SG_ONE)],
    ),
    ours(
        "security_group:get_all",
        RULE_ADMIN_OR_OWNER,
        "List the security groups of the caller's project.",
        &[op("GET", SG)],
    ),
    ours(
        "security_group:get_all_all_projects",
        RULE_ADMIN_API,
        "List security groups across projects (`all_projects`).",
        &[op("GET", SG)],
    ),
    ours(
        "security_group:create",
        RULE_ADMIN_OR_OWNER,
        "Create a security group.",
        &[op("POST", SG)],
    ),
    ours(
        "security_group:update",
        RULE_ADMIN_OR_OWNER,
        "Update a security group.",
        &[op("PUT", SG_ONE)],
    ),
    ours(
        "security_group:delete",
        RULE_ADMIN_OR_OWNER,
        "Delete a security group.",
        &[op("DELETE", SG_ONE)],
    ),
    ours(
        "security_group_rule:get",
        RULE_ADMIN_OR_OWNER,
        "Show a security group rule.",
        &[op("GET", SGR_ONE)],
    ),
    ours(
        "security_group_rule:get_all",
        RULE_ADMIN_OR_OWNER,
        "List the security group rules of the caller's project.",
        &[op("GET", SGR)],
    ),
    ours(
        "security_group_rule:get_all_all_projects",
        RULE_ADMIN_API,
        "List security group rules across projects (`all_projects`).",
        &[op("GET", SGR)],
    ),
    ours(
        "security_group_rule:create",
        RULE_ADMIN_OR_OWNER,
        "Create a security group rule.",
        &[op("POST", SGR)],
    ),
    ours(
        "security_group_rule:update",
        RULE_ADMIN_OR_OWNER,
        "Update a security group rule.",
        &[op("PUT", SGR_ONE)],
    ),
    ours(
        "security_group_rule:delete",
        RULE_ADMIN_OR_OWNER,
        "Delete a security group rule.",
        &[op("DELETE", SGR_ONE)],
    ),
    ours(
        "volume:get",
        RULE_ADMIN_OR_OWNER,
        "Show a volume.",
        &[op("GET", VOL_ONE)],
    ),
    ours(
        "volume:get_all",
        RULE_ADMIN_OR_OWNER,
        "List the volumes of the caller's project.",
        &[op("GET", VOL)],
    ),
    ours(
        "volume:get_all_all_projects",
        RULE_ADMIN_API,
        "List volumes across projects (`all_projects`).",
        &[op("GET", VOL)],
    ),
    ours(
        "volume:create",
        RULE_ADMIN_OR_OWNER,
        "Create a volume.",
        &[op("POST", VOL)],
    ),
    ours(
        "volume:update",
        RULE_ADMIN_OR_OWNER,
        "Update a volume.",
        &[op("PUT", VOL_ONE)],
    ),
    ours(
        "volume:delete",
        RULE_ADMIN_OR_OWNER,
        "Delete a volume.",
        &[op("DELETE", VOL_ONE)],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use std::collections::HashSet;

    #[test]
    fn every_default_parses() {
        for d in defaults() {
            assert!(parse(d.check_str).is_ok(), "{}", d.name);
        }
    }

    #[test]
    fn names_are_unique_and_documented() {
        let mut seen = HashSet::new();
        for d in defaults() {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            assert!(!d.description.is_empty(), "{}", d.name);
        }
    }

    #[test]
    fn every_reference_is_defined() {
        for d in defaults() {
            parse(d.check_str)
                .unwrap()
                .for_each_reference(&mut |r| assert!(find(r).is_some(), "{} -> {r}", d.name));
        }
    }

    #[test]
    fn zun_capsule_rules_match_the_fact_sheet() {
        let owner = RULE_ADMIN_OR_OWNER;
        let admin = RULE_ADMIN_API;
        for (name, check) in [
            ("context_is_admin", "role:admin"),
            (
                "admin_or_owner",
                "is_admin:True or project_id:%(project_id)s",
            ),
            ("admin_api", "rule:context_is_admin"),
            ("deny_everybody", "!"),
            // Zun: `owner`; ours also needs the member role (readers only read).
            ("capsule:create", RULE_ADMIN_OR_PROJECT_MEMBER),
            ("capsule:delete", RULE_ADMIN_OR_PROJECT_MEMBER),
            ("capsule:delete_all_projects", admin),
            ("capsule:get", owner),
            ("capsule:get:host", admin),
            ("capsule:get_one_all_projects", admin),
            ("capsule:get_all", owner),
            ("capsule:get_all_all_projects", admin),
            ("container:create:image_pull_policy", admin),
            ("container:create:privileged", "rule:deny_everybody"),
            ("container:create:runtime", admin),
            ("network:attach_external_network", "role:admin"),
            ("container:get_one_all_projects", admin),
            ("container:top", owner),
            ("container:stats", owner),
            ("container:actions", owner),
            ("container:action:events", admin),
        ] {
            let d = find(name).unwrap();
            assert_eq!(d.check_str, check, "{name}");
            assert_eq!(d.origin, Origin::Zun, "{name}");
        }
        assert_eq!(find("capsule:force_delete").unwrap().origin, Origin::Ours);
        let net_raw = find("capsule:create:net_raw").unwrap();
        assert_eq!((net_raw.check_str, net_raw.origin), (admin, Origin::Ours));
        // Zun: `owner`; ours also needs the member role for what changes a container.
        for name in [
            "container:execute",
            "container:execute_resize",
            "container:start",
            "container:stop",
            "container:reboot",
            "container:kill",
            "container:pause",
            "container:unpause",
            "container:get_archive",
            "container:put_archive",
        ] {
            let d = find(name).unwrap();
            assert_eq!(d.check_str, RULE_ADMIN_OR_PROJECT_MEMBER, "{name}");
            assert_eq!(d.origin, Origin::Zun, "{name}");
        }
    }

    #[test]
    fn field_rule_names() {
        assert_eq!(capsule_field_rule("host"), "capsule:get:host");
        assert_eq!(container_field_rule("runtime"), "container:get_one:runtime");
    }
}
