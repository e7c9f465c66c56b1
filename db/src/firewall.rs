//! What each compute host enforces, computed from the database: the security groups of the
//! capsules placed on it, their rules, and the addresses of every remote group's members. The
//! epoch counter orders the documents: every change that can alter one bumps it afterwards,
//! and a document carries the epoch read before its state was, with the database's
//! incarnation (another database's counter is another sequence).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use capsule_types::secgroup::{Cidr, Direction, Ethertype, FirewallRule, HostFirewall};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::entity::{capsule, capsule_security_group, firewall_epoch, security_group_rule};
use crate::{Database, DbError};

/// Where the security-group documents of this database stand: its incarnation and epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallVersion {
    /// The database's incarnation.
    pub incarnation: String,
    /// The epoch.
    pub epoch: u64,
}

impl Database {
    /// Bumps the security-group epoch after a change and returns the new version.
    pub async fn bump_firewall_epoch(&self) -> Result<FirewallVersion, DbError> {
        firewall_epoch::Entity::update_many()
            .col_expr(
                firewall_epoch::Column::Epoch,
                Expr::col(firewall_epoch::Column::Epoch).add(1),
            )
            .filter(firewall_epoch::Column::Id.eq(1))
            .exec(&self.conn)
            .await
            .map_err(DbError::query("bumping the security-group epoch"))?;
        self.firewall_version().await
    }

    /// The security-group epoch now.
    pub async fn firewall_epoch(&self) -> Result<u64, DbError> {
        Ok(self.firewall_version().await?.epoch)
    }

    /// The security-group incarnation and epoch now.
    pub async fn firewall_version(&self) -> Result<FirewallVersion, DbError> {
        let row = firewall_epoch::Entity::find_by_id(1)
            .one(&self.conn)
            .await
            .map_err(DbError::query("reading the security-group epoch"))?;
        Ok(row.map_or_else(
            || FirewallVersion {
                incarnation: String::new(),
                epoch: 0,
            },
            |r| FirewallVersion {
                incarnation: r.incarnation,
                epoch: u64::try_from(r.epoch).unwrap_or(0),
            },
        ))
    }

    /// Moves the epoch up to `at_least` if it is below (a host has seen a higher epoch of this
    /// incarnation: the database went back in time, e.g. restored from a backup). Returns
    /// whether it moved.
    pub async fn advance_firewall_epoch(&self, at_least: u64) -> Result<bool, DbError> {
        let at_least = i64::try_from(at_least).unwrap_or(i64::MAX);
        let res = firewall_epoch::Entity::update_many()
            .col_expr(firewall_epoch::Column::Epoch, Expr::value(at_least))
            .filter(firewall_epoch::Column::Id.eq(1))
            .filter(firewall_epoch::Column::Epoch.lt(at_least))
            .exec(&self.conn)
            .await
            .map_err(DbError::query("advancing the security-group epoch"))?;
        Ok(res.rows_affected == 1)
    }

    /// The hosts running capsules of `project` (any state).
    pub async fn project_hosts(&self, project: &str) -> Result<Vec<String>, DbError> {
        let hosts: Vec<Option<String>> = capsule::Entity::find()
            .select_only()
            .column(capsule::Column::Host)
            .distinct()
            .filter(capsule::Column::ProjectId.eq(project.to_owned()))
            .filter(capsule::Column::Host.is_not_null())
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(DbError::query(format!(
                "listing the hosts of project {project}"
            )))?;
        Ok(hosts.into_iter().flatten().collect())
    }

    /// The firewall of `host` as of now, labelled `version` (read before this is called).
    pub async fn host_firewall(
        &self,
        host: &str,
        version: &FirewallVersion,
    ) -> Result<HostFirewall, DbError> {
        let ctx = || format!("computing the firewall of host {host}");
        let capsules: Vec<(i32, String)> = capsule::Entity::find()
            .select_only()
            .column(capsule::Column::Id)
            .column(capsule::Column::Uuid)
            .filter(capsule::Column::Host.eq(host.to_owned()))
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        let mut doc = HostFirewall {
            epoch: version.epoch,
            incarnation: version.incarnation.clone(),
            ..HostFirewall::default()
        };
        if capsules.is_empty() {
            return Ok(doc);
        }
        let uuids: HashMap<i32, Uuid> = capsules
            .iter()
            .filter_map(|(id, u)| Some((*id, u.parse().ok()?)))
            .collect();
        let bindings = capsule_security_group::Entity::find()
            .filter(capsule_security_group::Column::CapsuleId.is_in(uuids.keys().copied()))
            .order_by_asc(capsule_security_group::Column::CapsuleId)
            .order_by_asc(capsule_security_group::Column::Position)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        for u in uuids.values() {
            doc.capsules.insert(*u, Vec::new());
        }
        let mut group_ids = BTreeSet::new();
        for b in bindings {
            let (Some(u), Some(g)) = (uuids.get(&b.capsule_id), b.security_group_id) else {
                continue;
            };
            group_ids.insert(g.clone());
            if let Some(list) = doc.capsules.get_mut(u) {
                list.push(g);
            }
        }
        let rules = security_group_rule::Entity::find()
            .filter(security_group_rule::Column::SecurityGroupId.is_in(group_ids.iter().cloned()))
            .order_by_asc(security_group_rule::Column::CreatedAt)
            .order_by_asc(security_group_rule::Column::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        let remote_ids: BTreeSet<String> = rules
            .iter()
            .filter_map(|r| r.remote_group_id.clone())
            .collect();
        let members = self.group_members(&remote_ids).await?;
        for g in &group_ids {
            doc.groups.insert(g.clone(), Vec::new());
        }
        for r in rules {
            let Some(rule) = firewall_rule(&r, &members) else {
                continue;
            };
            if let Some(list) = doc.groups.get_mut(&r.security_group_id) {
                list.push(rule);
            }
        }
        Ok(doc)
    }

    /// The addresses of the capsules bound to each group of `groups`.
    async fn group_members(
        &self,
        groups: &BTreeSet<String>,
    ) -> Result<HashMap<String, Vec<Cidr>>, DbError> {
        let mut out: HashMap<String, Vec<Cidr>> =
            groups.iter().map(|g| (g.clone(), Vec::new())).collect();
        if groups.is_empty() {
            return Ok(out);
        }
        let ctx = || "reading the members of remote security groups".to_owned();
        let bindings = capsule_security_group::Entity::find()
            .filter(capsule_security_group::Column::SecurityGroupId.is_in(groups.iter().cloned()))
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        let ids: BTreeSet<i32> = bindings.iter().map(|b| b.capsule_id).collect();
        let addresses: BTreeMap<i32, serde_json::Value> = capsule::Entity::find()
            .select_only()
            .column(capsule::Column::Id)
            .column(capsule::Column::Addresses)
            .filter(capsule::Column::Id.is_in(ids))
            .into_tuple::<(i32, serde_json::Value)>()
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
            .into_iter()
            .collect();
        for b in bindings {
            let (Some(g), Some(a)) = (b.security_group_id, addresses.get(&b.capsule_id)) else {
                continue;
            };
            if let Some(list) = out.get_mut(&g) {
                for ip in capsule_ips(a) {
                    let c = Cidr::parse(&ip.to_string());
                    if let Some(c) = c.filter(|c| !list.contains(c)) {
                        list.push(c);
                    }
                }
            }
        }
        for list in out.values_mut() {
            list.sort_by_key(|c| (c.addr, c.len));
        }
        Ok(out)
    }
}

/// The addresses in a capsule's `addresses` (`{"<network>": [{"addr": ...}, ...]}`).
pub fn capsule_ips(addresses: &serde_json::Value) -> Vec<IpAddr> {
    let Some(nets) = addresses.as_object() else {
        return Vec::new();
    };
    nets.values()
        .filter_map(|v| v.as_array())
        .flatten()
        .filter_map(|a| a.get("addr")?.as_str()?.parse().ok())
        .collect()
}

/// A stored rule as the host enforces it; `None` for a row that does not parse (never
/// written by this service).
fn firewall_rule(
    r: &security_group_rule::Model,
    members: &HashMap<String, Vec<Cidr>>,
) -> Option<FirewallRule> {
    let direction = match r.direction.as_str() {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        _ => return None,
    };
    let ethertype = match r.ethertype.as_str() {
        "IPv4" => Ethertype::IPv4,
        "IPv6" => Ethertype::IPv6,
        _ => return None,
    };
    let protocol = match r.protocol.as_deref() {
        None | Some("" | "any" | "0") => None,
        Some("tcp") => Some(6),
        Some("udp") => Some(17),
        Some("icmp") => Some(1),
        Some("ipv6-icmp" | "icmpv6") => Some(58),
        Some(n) => Some(n.parse().ok()?),
    };
    let remote = match (&r.remote_ip_prefix, &r.remote_group_id) {
        (Some(p), _) => Some(vec![Cidr::parse(p)?]),
        (None, Some(g)) => Some(members.get(g).cloned().unwrap_or_default()),
        (None, None) => None,
    };
    Some(FirewallRule {
        direction,
        ethertype,
        protocol,
        port_range_min: r.port_range_min.and_then(|p| u16::try_from(p).ok()),
        port_range_max: r.port_range_max.and_then(|p| u16::try_from(p).ok()),
        remote,
    })
}
