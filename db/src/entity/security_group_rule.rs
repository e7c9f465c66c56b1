//! The `security_group_rules` table: what a group lets through.

use sea_orm::entity::prelude::*;

/// A security group rule.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "security_group_rules")]
pub struct Model {
    /// Its uuid (Neutron's `id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The group it belongs to.
    pub security_group_id: String,
    /// Owning project (the group's).
    pub project_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// As given (lower case): `tcp`, `udp`, `icmp`, a number; `None` is any.
    pub protocol: Option<String>,
    /// First port, or ICMP type.
    pub port_range_min: Option<i32>,
    /// Last port, or ICMP code.
    pub port_range_max: Option<i32>,
    /// Allowed peers by prefix (normalised CIDR).
    pub remote_ip_prefix: Option<String>,
    /// Allowed peers by group.
    pub remote_group_id: Option<String>,
    /// Description.
    pub description: String,
    /// SHA-256 of what the rule lets through (unique per group: no duplicates).
    pub fingerprint: String,
    /// Created.
    pub created_at: DateTimeUtc,
}

/// Relations of a rule.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its group.
    #[sea_orm(
        belongs_to = "super::security_group::Entity",
        from = "Column::SecurityGroupId",
        to = "super::security_group::Column::Id",
        on_delete = "Cascade"
    )]
    Group,
}

impl Related<super::security_group::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Group.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
