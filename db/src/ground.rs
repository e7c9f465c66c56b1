//! The ground every datastore module stands on: the clock rows are stamped with, and the
//! per-project generation that changes to a project's capsules and volumes bump. It imports no
//! datastore module, so the resource modules import it and not each other for these.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::entity::project_generation;

/// Now, truncated to microseconds so every backend stores and returns the same value.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Bumps the generation of `project` inside the caller's transaction (and takes the row's lock
/// until it ends, which serializes concurrent changes to the project).
pub(crate) async fn touch_project<C: ConnectionTrait>(db: &C, project: &str) -> Result<(), DbErr> {
    project_generation::Entity::insert(project_generation::ActiveModel {
        project_id: Set(project.to_owned()),
        generation: Set(1),
    })
    .on_conflict(
        OnConflict::column(project_generation::Column::ProjectId)
            .value(
                project_generation::Column::Generation,
                Expr::col((
                    project_generation::Entity,
                    project_generation::Column::Generation,
                ))
                .add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
