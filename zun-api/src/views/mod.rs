//! Rendering of capsules as Zun shows them: the current view (>= 1.32) and the legacy one,
//! with fields hidden per policy (`capsule:get:<field>`, `container:get_one:<field>`). The JSON
//! is written straight from the database records, without an intermediate value tree.

mod capsule;
pub mod hosts;
pub mod services;
mod time;

pub use capsule::{capsule_json, capsule_list_json, ViewMask};
pub use time::zun_time;
