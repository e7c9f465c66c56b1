//! oslo.policy-compatible policy engine with Zun's capsule defaults (no I/O).
