//! Security groups and rules: each project's `default` group made on first use with Neutron's
//! default rules, groups and rules created, changed and deleted, duplicates refused by the
//! database itself, and groups in use by capsules kept.

use capsule_types::secgroup::{Direction, Ethertype, GroupFields, NewRule};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::entity::{
    capsule_security_group, default_security_group, security_group, security_group_rule,
};
use crate::ground::now;
use crate::{Database, DbError};

/// A group with its rules.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityGroupRecord {
    /// The group.
    pub group: security_group::Model,
    /// Its rules, oldest first.
    pub rules: Vec<security_group_rule::Model>,
}

/// Whose groups: one project's, or everyone's (admin).
#[derive(Clone, Copy, Debug)]
pub enum GroupScope<'a> {
    /// Only this project's.
    Project(&'a str),
    /// Every project's.
    All,
}

/// What a rule create did.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleCreated {
    /// It was added.
    Added(Box<security_group_rule::Model>),
    /// The group has a rule letting the same traffic through (Neutron's 409).
    Exists {
        /// That rule's id.
        rule_id: String,
    },
    /// No such group in the scope.
    NoGroup,
}

/// What a group delete did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupDeleted {
    /// It is gone, with its rules.
    Deleted,
    /// No such group in the scope.
    NotFound,
    /// Capsules still use it (Neutron's 409 `SecurityGroupInUse`).
    InUse,
    /// It is its project's `default` and the caller is not an admin.
    IsDefault,
}

/// What a capsule's reference to a group (a name or an id) resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The group with this id.
    Group(String),
    /// No group of the project has that id or name.
    NotFound,
    /// Several groups of the project have that name.
    Ambiguous,
}

/// SHA-256 of what `r` lets through (everything but the description).
pub fn fingerprint(r: &NewRule) -> String {
    let s = format!(
        "{}|{}|{}|{:?}|{:?}|{}|{}",
        r.direction.as_str(),
        r.ethertype.as_str(),
        r.protocol
            .map(|p| p.number().to_string())
            .unwrap_or_default(),
        r.port_range_min,
        r.port_range_max,
        r.remote_ip_prefix
            .map(|c| c.to_string())
            .unwrap_or_default(),
        r.remote_group_id.as_deref().unwrap_or("")
    );
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn in_scope(scope: GroupScope<'_>) -> sea_orm::Condition {
    match scope {
        GroupScope::Project(p) => {
            sea_orm::Condition::all().add(security_group::Column::ProjectId.eq(p.to_owned()))
        }
        GroupScope::All => sea_orm::Condition::all(),
    }
}

impl Database {
    /// The `default` group of `project`, made (with Neutron's default rules: ingress from its
    /// own members, all egress, IPv4 and IPv6) if it does not exist yet. Concurrent first
    /// calls make one.
    pub async fn ensure_default_security_group(
        &self,
        project: &str,
    ) -> Result<security_group::Model, DbError> {
        let ctx = || format!("ensuring the default security group of project {project}");
        if let Some(g) = self.default_group(project).await? {
            return Ok(g);
        }
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let group = insert_group(&txn, project, "default", "Default security group").await?;
        let claimed = default_security_group::Entity::insert(default_security_group::ActiveModel {
            project_id: Set(project.to_owned()),
            security_group_id: Set(group.id.clone()),
        })
        .on_conflict(
            OnConflict::column(default_security_group::Column::ProjectId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(DbError::query(ctx()))?;
        if claimed == 0 {
            // Another request made it first: ours is dropped with the transaction.
            txn.rollback().await.map_err(DbError::query(ctx()))?;
        } else {
            for ethertype in [Ethertype::IPv4, Ethertype::IPv6] {
                let from_members = default_rule(&group.id, Direction::Ingress, ethertype, true);
                insert_rule(&txn, project, &from_members).await?;
                insert_rule(
                    &txn,
                    project,
                    &default_rule(&group.id, Direction::Egress, ethertype, false),
                )
                .await?;
            }
            txn.commit().await.map_err(DbError::query(ctx()))?;
        }
        self.default_group(project)
            .await?
            .ok_or_else(|| DbError::Query {
                action: ctx(),
                source: sea_orm::DbErr::RecordNotFound("default security group".into()),
            })
    }

    async fn default_group(&self, project: &str) -> Result<Option<security_group::Model>, DbError> {
        let ctx = || format!("reading the default security group of project {project}");
        let Some(d) = default_security_group::Entity::find_by_id(project.to_owned())
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(None);
        };
        security_group::Entity::find_by_id(d.security_group_id)
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))
    }

    /// The group of `project` that `reference` names: its id, else its name (`default` is the
    /// project's default group, made if needed).
    pub async fn resolve_security_group(
        &self,
        project: &str,
        reference: &str,
    ) -> Result<Resolved, DbError> {
        if reference == "default" {
            return Ok(Resolved::Group(
                self.ensure_default_security_group(project).await?.id,
            ));
        }
        let ctx = || format!("resolving security group {reference:?} of project {project}");
        let by_id = security_group::Entity::find_by_id(reference.to_owned())
            .filter(security_group::Column::ProjectId.eq(project.to_owned()))
            .one(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        if let Some(g) = by_id {
            return Ok(Resolved::Group(g.id));
        }
        let by_name = security_group::Entity::find()
            .filter(security_group::Column::ProjectId.eq(project.to_owned()))
            .filter(security_group::Column::Name.eq(reference.to_owned()))
            .limit(2)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok(match by_name.as_slice() {
            [] => Resolved::NotFound,
            [g] => Resolved::Group(g.id.clone()),
            _ => Resolved::Ambiguous,
        })
    }

    /// The ids of the default groups in `scope`.
    pub async fn default_security_group_ids(
        &self,
        scope: GroupScope<'_>,
    ) -> Result<std::collections::BTreeSet<String>, DbError> {
        let mut q = default_security_group::Entity::find();
        if let GroupScope::Project(p) = scope {
            q = q.filter(default_security_group::Column::ProjectId.eq(p.to_owned()));
        }
        Ok(q.all(&self.conn)
            .await
            .map_err(DbError::query("listing default security groups"))?
            .into_iter()
            .map(|d| d.security_group_id)
            .collect())
    }

    /// Rule `id` if its group is in `scope`.
    pub async fn security_group_rule(
        &self,
        scope: GroupScope<'_>,
        id: &str,
    ) -> Result<Option<security_group_rule::Model>, DbError> {
        let mut q = security_group_rule::Entity::find_by_id(id.to_owned());
        if let GroupScope::Project(p) = scope {
            q = q.filter(security_group_rule::Column::ProjectId.eq(p.to_owned()));
        }
        q.one(&self.conn)
            .await
            .map_err(DbError::query(format!("reading security group rule {id}")))
    }

    /// The groups in `scope`, oldest first, with their rules.
    pub async fn security_groups(
        &self,
        scope: GroupScope<'_>,
    ) -> Result<Vec<SecurityGroupRecord>, DbError> {
        let ctx = || "listing security groups".to_owned();
        let groups = security_group::Entity::find()
            .filter(in_scope(scope))
            .order_by_asc(security_group::Column::CreatedAt)
            .order_by_asc(security_group::Column::Id)
            .find_with_related(security_group_rule::Entity)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok(groups
            .into_iter()
            .map(|(group, mut rules)| {
                rules.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                SecurityGroupRecord { group, rules }
            })
            .collect())
    }

    /// Group `id` if it is in `scope`.
    pub async fn security_group(
        &self,
        scope: GroupScope<'_>,
        id: &str,
    ) -> Result<Option<SecurityGroupRecord>, DbError> {
        let ctx = || format!("reading security group {id}");
        let found = security_group::Entity::find_by_id(id.to_owned())
            .filter(in_scope(scope))
            .find_with_related(security_group_rule::Entity)
            .all(&self.conn)
            .await
            .map_err(DbError::query(ctx()))?;
        Ok(found.into_iter().next().map(|(group, mut rules)| {
            rules.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            SecurityGroupRecord { group, rules }
        }))
    }

    /// A new group of `project` with Neutron's default egress rules (IPv4 and IPv6).
    pub async fn create_security_group(
        &self,
        project: &str,
        name: &str,
        description: &str,
    ) -> Result<SecurityGroupRecord, DbError> {
        let ctx = || format!("creating security group {name:?} of project {project}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        let group = insert_group(&txn, project, name, description).await?;
        let mut rules = Vec::new();
        for ethertype in [Ethertype::IPv4, Ethertype::IPv6] {
            let r = default_rule(&group.id, Direction::Egress, ethertype, false);
            rules.push(insert_rule(&txn, project, &r).await?);
        }
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(SecurityGroupRecord { group, rules })
    }

    /// Changes the name and/or description of group `id` in `scope`; `None` if there is none.
    pub async fn update_security_group(
        &self,
        scope: GroupScope<'_>,
        id: &str,
        fields: &GroupFields,
    ) -> Result<Option<SecurityGroupRecord>, DbError> {
        let ctx = || format!("updating security group {id}");
        let Some(rec) = self.security_group(scope, id).await? else {
            return Ok(None);
        };
        let mut am: security_group::ActiveModel = rec.group.clone().into();
        if let Some(n) = &fields.name {
            am.name = Set(n.clone());
        }
        if let Some(d) = &fields.description {
            am.description = Set(d.clone());
        }
        am.updated_at = Set(now());
        am.revision_number = Set(rec.group.revision_number + 1);
        am.update(&self.conn).await.map_err(DbError::query(ctx()))?;
        self.security_group(scope, id).await
    }

    /// Deletes group `id` in `scope` with its rules, unless capsules use it, or it is the
    /// project's default and `admin` is false.
    pub async fn delete_security_group(
        &self,
        scope: GroupScope<'_>,
        id: &str,
        admin: bool,
    ) -> Result<GroupDeleted, DbError> {
        let ctx = || format!("deleting security group {id}");
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        if !bump_group(&txn, scope, id).await? {
            return Ok(GroupDeleted::NotFound);
        }
        let Some(group) = security_group::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(GroupDeleted::NotFound);
        };
        let is_default = default_security_group::Entity::find_by_id(group.project_id.clone())
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
            .is_some_and(|d| d.security_group_id == group.id);
        if is_default && !admin {
            return Ok(GroupDeleted::IsDefault);
        }
        let used = capsule_security_group::Entity::find()
            .filter(capsule_security_group::Column::SecurityGroupId.eq(group.id.clone()))
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
            .is_some();
        if used {
            return Ok(GroupDeleted::InUse);
        }
        // Rules of other groups that let this group's members in go with it (Neutron's
        // cascade on `remote_group_id`).
        security_group_rule::Entity::delete_many()
            .filter(security_group_rule::Column::RemoteGroupId.eq(group.id.clone()))
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        security_group::Entity::delete_by_id(group.id)
            .exec(&txn)
            .await
            .map_err(DbError::query(ctx()))?;
        txn.commit().await.map_err(DbError::query(ctx()))?;
        Ok(GroupDeleted::Deleted)
    }

    /// Adds `rule` to its group if the group is in `scope` and has no rule letting the same
    /// traffic through.
    pub async fn create_security_group_rule(
        &self,
        scope: GroupScope<'_>,
        rule: &NewRule,
    ) -> Result<RuleCreated, DbError> {
        let ctx = || format!("adding a rule to security group {}", rule.security_group_id);
        let txn = self.conn.begin().await.map_err(DbError::query(ctx()))?;
        if !bump_group(&txn, scope, &rule.security_group_id).await? {
            return Ok(RuleCreated::NoGroup);
        }
        let Some(group) = security_group::Entity::find_by_id(rule.security_group_id.clone())
            .one(&txn)
            .await
            .map_err(DbError::query(ctx()))?
        else {
            return Ok(RuleCreated::NoGroup);
        };
        let fp = fingerprint(rule);
        match insert_rule(&txn, &group.project_id, rule).await {
            Ok(added) => {
                txn.commit().await.map_err(DbError::query(ctx()))?;
                Ok(RuleCreated::Added(Box::new(added)))
            }
            Err(e) => {
                let _ = txn.rollback().await;
                // The unique fingerprint index refused it: find the rule it duplicates.
                let existing = security_group_rule::Entity::find()
                    .filter(security_group_rule::Column::SecurityGroupId.eq(group.id.clone()))
                    .filter(security_group_rule::Column::Fingerprint.eq(fp))
                    .one(&self.conn)
                    .await
                    .map_err(DbError::query(ctx()))?;
                match existing {
                    Some(r) => Ok(RuleCreated::Exists { rule_id: r.id }),
                    None => Err(e),
                }
            }
        }
    }

    /// The rules of the groups in `scope`.
    pub async fn security_group_rules(
        &self,
        scope: GroupScope<'_>,
    ) -> Result<Vec<security_group_rule::Model>, DbError> {
        let mut q = security_group_rule::Entity::find();
        if let GroupScope::Project(p) = scope {
            q = q.filter(security_group_rule::Column::ProjectId.eq(p.to_owned()));
        }
        q.order_by_asc(security_group_rule::Column::CreatedAt)
            .order_by_asc(security_group_rule::Column::Id)
            .all(&self.conn)
            .await
            .map_err(DbError::query("listing security group rules"))
    }

    /// Deletes rule `id` if its group is in `scope`; whether there was one.
    pub async fn delete_security_group_rule(
        &self,
        scope: GroupScope<'_>,
        id: &str,
    ) -> Result<bool, DbError> {
        let ctx = || format!("deleting security group rule {id}");
        let mut q = security_group_rule::Entity::delete_many()
            .filter(security_group_rule::Column::Id.eq(id.to_owned()));
        if let GroupScope::Project(p) = scope {
            q = q.filter(security_group_rule::Column::ProjectId.eq(p.to_owned()));
        }
        let done = q.exec(&self.conn).await.map_err(DbError::query(ctx()))?;
        Ok(done.rows_affected > 0)
    }
}

/// Bumps the revision of group `id` in `scope`, as the first statement of a transaction: on
/// SQLite a transaction that reads first and writes later fails with "database is locked"
/// when another writer got in between, while one that writes first waits its turn. Whether
/// the group is there.
async fn bump_group(
    c: &impl ConnectionTrait,
    scope: GroupScope<'_>,
    id: &str,
) -> Result<bool, DbError> {
    let done = security_group::Entity::update_many()
        .col_expr(
            security_group::Column::RevisionNumber,
            Expr::col(security_group::Column::RevisionNumber).add(1),
        )
        .col_expr(security_group::Column::UpdatedAt, Expr::value(now()))
        .filter(security_group::Column::Id.eq(id.to_owned()))
        .filter(in_scope(scope))
        .exec(c)
        .await
        .map_err(DbError::query(format!("locking security group {id}")))?;
    Ok(done.rows_affected > 0)
}

fn default_rule(
    group: &str,
    direction: Direction,
    ethertype: Ethertype,
    from_members: bool,
) -> NewRule {
    NewRule {
        security_group_id: group.to_owned(),
        direction,
        ethertype,
        protocol: None,
        protocol_text: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: from_members.then(|| group.to_owned()),
        description: String::new(),
    }
}

async fn insert_group(
    c: &impl ConnectionTrait,
    project: &str,
    name: &str,
    description: &str,
) -> Result<security_group::Model, DbError> {
    let t = now();
    security_group::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        project_id: Set(project.to_owned()),
        name: Set(name.to_owned()),
        description: Set(description.to_owned()),
        created_at: Set(t),
        updated_at: Set(t),
        revision_number: Set(1),
    }
    .insert(c)
    .await
    .map_err(DbError::query(format!("creating security group {name:?}")))
}

async fn insert_rule(
    c: &impl ConnectionTrait,
    project: &str,
    r: &NewRule,
) -> Result<security_group_rule::Model, DbError> {
    security_group_rule::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        security_group_id: Set(r.security_group_id.clone()),
        project_id: Set(project.to_owned()),
        direction: Set(r.direction.as_str().to_owned()),
        ethertype: Set(r.ethertype.as_str().to_owned()),
        protocol: Set(r.protocol_text.clone()),
        port_range_min: Set(r.port_range_min.map(i32::from)),
        port_range_max: Set(r.port_range_max.map(i32::from)),
        remote_ip_prefix: Set(r.remote_ip_prefix.map(|c| c.to_string())),
        remote_group_id: Set(r.remote_group_id.clone()),
        description: Set(r.description.clone()),
        fingerprint: Set(fingerprint(r)),
        created_at: Set(now()),
    }
    .insert(c)
    .await
    .map_err(DbError::query(format!(
        "adding a rule to security group {}",
        r.security_group_id
    )))
}
