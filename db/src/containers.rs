//! Containers looked up on their own (Zun's `/v1/containers/{ident}` routes, such as logs): by
//! uuid or name, within what the caller may see, with the capsule they belong to.

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::capsules::{CapsuleRecord, Scope};
use crate::entity::{capsule, capsule_container};
use crate::{Database, DbError};

/// A container with its capsule.
#[derive(Clone, Debug)]
pub struct ContainerRecord {
    /// The container row.
    pub container: capsule_container::Model,
    /// Its capsule, with all its containers.
    pub capsule: CapsuleRecord,
}

impl Database {
    /// Containers whose uuid or name is `ident`, in capsules the scope sees (at most two: more
    /// than one is an ambiguous name for the caller to report).
    pub async fn containers_by_ident(
        &self,
        scope: &Scope,
        ident: &str,
    ) -> Result<Vec<ContainerRecord>, DbError> {
        let ctx = || format!("looking up container {ident}");
        let rows: Vec<(capsule_container::Model, Option<capsule::Model>)> =
            capsule_container::Entity::find()
                .find_also_related(capsule::Entity)
                .filter(
                    Condition::any()
                        .add(capsule_container::Column::Uuid.eq(ident))
                        .add(capsule_container::Column::Name.eq(ident)),
                )
                .filter(scope.condition())
                .order_by_asc(capsule_container::Column::Id)
                .limit(2)
                .all(self.connection())
                .await
                .map_err(DbError::query(ctx()))?;
        let mut out = Vec::with_capacity(rows.len());
        for (container, capsule) in rows {
            let Some(capsule) = capsule else { continue };
            let Some(capsule) = self.with_children(vec![capsule]).await?.pop() else {
                continue;
            };
            out.push(ContainerRecord { container, capsule });
        }
        Ok(out)
    }
}
