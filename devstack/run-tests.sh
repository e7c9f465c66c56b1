#!/usr/bin/env bash
# devstack/run-tests.sh: the whole test suite, on a fresh machine as on a developer's.
#
# Brings the stack up first (devstack/stack.sh: Keystone, PostgreSQL, zun-api, ...; fast when
# it already runs), then checks formatting and lints, and runs every test of the workspace
# against the real services, with their addresses and credentials from $STACK_DIR/etc/test-env.
# Extra arguments go to `cargo test` (e.g. `-p zun-api`).
set -euo pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-/opt/capsule}

"$TOP_DIR/devstack/stack.sh"

# shellcheck disable=SC1091
source "$STACK_DIR/etc/test-env"
cd "$TOP_DIR"
echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test" >&2
# Tests that measure something (the hostile workloads' witness) append their figures here.
CAPSULE_TEST_FIGURES=$(mktemp /tmp/capsule-test-figures.XXXXXX)
export CAPSULE_TEST_FIGURES
trap 'rm -f "$CAPSULE_TEST_FIGURES"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" || status=$?
# The API's integration suite ran on SQLite above; the whole of it again on PostgreSQL (a
# schema per test in devstack's database). Only in a full run: extra arguments choose tests.
if [ $# -eq 0 ]; then
    echo "==> cargo test -p zun-api --test api, on PostgreSQL" >&2
    ZUN_TEST_API_DB=postgres cargo test --locked -p zun-api --test api || status=$?
fi
if [ -s "$CAPSULE_TEST_FIGURES" ]; then
    echo "==> figures the tests measured" >&2
    cat "$CAPSULE_TEST_FIGURES" >&2
fi
exit "$status"
