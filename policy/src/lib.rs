//! oslo.policy-compatible policy engine with Zun's capsule defaults (no I/O).
//!
//! ```
//! use policy::{Credentials, Enforcer, Target};
//!
//! let mut enforcer = Enforcer::with_defaults();
//! // Callers read the policy file; the library only sees its contents.
//! enforcer.load_overrides("\"capsule:delete\": \"rule:context_is_admin\"")?;
//!
//! let creds = enforcer.credentials_from(Credentials::project_scoped("u1", "p1", ["member"]));
//! assert!(!creds.is_admin);
//! assert!(enforcer.enforce("capsule:get", &Target::for_project("p1"), &creds).is_ok());
//! let denied = enforcer.enforce("capsule:delete", &Target::for_project("p1"), &creds);
//! assert_eq!(
//!     denied.unwrap_err().to_string(),
//!     "Policy doesn't allow capsule:delete to be performed."
//! );
//! # Ok::<(), policy::LoadError>(())
//! ```

pub mod check;
pub mod context;
pub mod defaults;
pub mod enforcer;
pub mod error;
pub mod parser;
pub mod sample;

pub use check::Check;
pub use context::{Credentials, Target};
pub use defaults::{defaults, Operation, Origin, RuleDefault};
pub use enforcer::{Enforcer, LoadReport};
pub use error::{LoadError, PolicyError, SyntaxError, TargetError};
pub use parser::parse;
pub use sample::sample_yaml;
