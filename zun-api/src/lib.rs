//! The capsule API server library.
