//! Network: one network namespace per capsule on the host bridge, with published ports, through netavark (see docs/runtime.md).
