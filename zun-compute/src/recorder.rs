//! What the fake drivers did, in order: one recorder shared by the fakes of a test, so the order
//! of calls across host parts (images, network, shims, volumes, firewall) can be checked; and the
//! calls it was told to fail.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// One call a fake driver received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `<part>.<method>`, e.g. `network.setup`.
    pub name: &'static str,
    /// What it was about (a capsule, an image, a volume...).
    pub detail: String,
}

/// The calls of every fake sharing it. Cheap to clone; clones share the record.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    fail: HashSet<String>,
}

impl Recorder {
    /// An empty record, failing nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call named `name` (`<part>.<method>`) fail.
    pub fn fail(&self, name: &str) {
        self.lock().fail.insert(name.to_owned());
    }

    /// Makes calls named `name` succeed again.
    pub fn heal(&self, name: &str) {
        self.lock().fail.remove(name);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The names of every call so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.lock().calls.iter().map(|c| c.name).collect()
    }

    /// Forgets the calls so far (not what to fail).
    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    /// Records call `name` about `detail`; `Err` with the words of the failure if it was told
    /// to fail that call.
    pub fn call(&self, name: &'static str, detail: impl ToString) -> Result<(), String> {
        let mut inner = self.lock();
        inner.calls.push(Call {
            name,
            detail: detail.to_string(),
        });
        if inner.fail.contains(name) {
            Err(format!("injected failure of {name}"))
        } else {
            Ok(())
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_fails_what_it_is_told() {
        let r = Recorder::new();
        r.call("a.x", 1).unwrap();
        r.fail("b.y");
        assert_eq!(r.call("b.y", "z").unwrap_err(), "injected failure of b.y");
        r.heal("b.y");
        r.call("b.y", "z").unwrap();
        assert_eq!(r.names(), ["a.x", "b.y", "b.y"]);
        assert_eq!(r.calls()[1].detail, "z");
    }
}
