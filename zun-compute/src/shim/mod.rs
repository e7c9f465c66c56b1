//! The per-capsule shim: sandbox, init and app containers through libcontainer; logs, restarts, reaping (see docs/runtime.md).
