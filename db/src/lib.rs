//! Database layer of the capsule service.
