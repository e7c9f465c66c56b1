//! Pure types shared by the capsule API, compute agent, CLI and tempest (no I/O).
