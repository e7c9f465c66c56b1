//! Volume types (the Cinder API's `/types`): there is one, Cinder's default `__DEFAULT__`.

use super::volume::VolumeError;

/// The id of the only volume type, `__DEFAULT__` (fixed, so clients may cache it).
pub const DEFAULT_TYPE_ID: &str = "5d6a3f2e-9c1b-4f7a-8e0d-2b4c6a8e1f30";
/// The name of the only volume type (Cinder's default type's name).
pub const DEFAULT_TYPE_NAME: &str = "__DEFAULT__";

/// Whether a create's `volume_type` (a name or an id) names the one type.
pub fn names_the_type(name_or_id: &str) -> bool {
    name_or_id == DEFAULT_TYPE_NAME || name_or_id == DEFAULT_TYPE_ID
}

/// The one type, asked for by id, name or `default`.
pub fn find(ident: &str) -> Result<(), VolumeError> {
    if [DEFAULT_TYPE_ID, DEFAULT_TYPE_NAME, "default"].contains(&ident) {
        Ok(())
    } else {
        Err(VolumeError::TypeNotFound {
            id: ident.to_owned(),
        })
    }
}
