//! The devstack test environment: the variables `devstack/stack.sh` writes to
//! `$STACK_DIR/etc/test-env` (services' addresses, credentials, tool paths).

/// A variable of devstack's test environment. Missing is a failure that says how to run the
/// tests, never a skip.
#[track_caller]
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the tests need the running stack; run them with \
             devstack/run-tests.sh (or source $STACK_DIR/etc/test-env after devstack/stack.sh)"
        )
    })
}

/// A variable of the test environment that has a default (a tool's or a service's usual
/// place); unset and empty both mean the default.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
