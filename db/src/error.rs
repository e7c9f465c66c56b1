//! Errors of the database layer; each carries the resource or URL it concerns.

/// What went wrong in the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or opened.
    #[error("cannot connect to database {url}")]
    Connect {
        /// The URL with its password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: sea_orm::DbErr,
    },
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate {
        /// The driver's error.
        #[source]
        source: sea_orm::DbErr,
    },
    /// A query failed.
    #[error("database query failed while {action}")]
    Query {
        /// What we were doing.
        action: String,
        /// The driver's error.
        #[source]
        source: sea_orm::DbErr,
    },
    /// A paging marker names no capsule visible to the caller.
    #[error("marker {marker} not found")]
    MarkerNotFound {
        /// The marker as given.
        marker: String,
    },
    /// A host could not take a capsule (not enough resources left, or a port taken); nothing
    /// was written.
    #[error("host {host} cannot take the capsule: {reason}")]
    ClaimFailed {
        /// The host.
        host: String,
        /// Why, for logs and for the scheduler's next choice.
        reason: String,
    },
    /// A capsule's volumes cannot be taken (they changed since the API checked them, or the
    /// quota would be passed); nothing was written.
    #[error(transparent)]
    VolumeRefused(#[from] crate::volumes::VolumeRefused),
    /// A stored JSON column does not have the expected shape.
    #[error("corrupt {column} in row {id}")]
    Corrupt {
        /// Column name.
        column: &'static str,
        /// Row key.
        id: i32,
    },
    /// A stored id is not a uuid.
    #[error("stored {column} {value:?} is not a uuid")]
    NotUuid {
        /// Column name.
        column: &'static str,
        /// The value.
        value: String,
    },
}

impl DbError {
    /// Wraps a driver error with what we were doing.
    pub(crate) fn query(action: impl Into<String>) -> impl FnOnce(sea_orm::DbErr) -> Self {
        let action = action.into();
        move |source| Self::Query { action, source }
    }
}
