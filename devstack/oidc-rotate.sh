#!/usr/bin/env bash
# devstack/oidc-rotate.sh: rotate the signing keys of devstack's OIDC provider (lib/oidc).
#
# Sends SIGHUP to the provider stack.sh started (by its pid file): it generates a new RS256 and a
# new ES256 key with new kids, signs with them from then on, drops the old keys from its JWKS (so
# tokens they signed no longer verify) and rewrites $STACK_DIR/oidc/keys.json. Waits until the
# JWKS (the discovery document's jwks_uri) shows only new kids, then prints them on stdout, one
# "ALG KID" line per key, e.g.
#   ES256 3q2-7w...
#   RS256 Xy8_Jk...
# Honours STACK_DIR (default /opt/capsule) and ZUN_OIDC_PORT like stack.sh; OIDC_ROTATE_TIMEOUT
# (seconds, default 30).
set -euo pipefail
shopt -s inherit_errexit

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TOP_DIR/.." && pwd)

case ${1:-} in
    "") ;;
    -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: $0 (no arguments)" >&2
        exit 2
        ;;
esac

# shellcheck source=devstack/lib/common
source "$TOP_DIR/lib/common"
# shellcheck source=devstack/lib/oidc
source "$TOP_DIR/lib/oidc"

TIMEOUT=${OIDC_ROTATE_TIMEOUT:-30}

pid=$(bg_pid oidc) ||
    die "the OIDC provider does not run (no live process for $(pid_file oidc)): start it with $TOP_DIR/stack.sh"
old=$(oidc_jwks_kids) || die "cannot read the JWKS of $OIDC_ISSUER (see $OIDC_LOG)"
[[ -n $old ]] || die "the JWKS of $OIDC_ISSUER is empty"

info "rotating the keys of the OIDC provider (pid $pid); now: $(tr '\n' ' ' <<<"$old")"
kill -HUP "$pid"

deadline=$((SECONDS + TIMEOUT))
while :; do
    new=$(oidc_jwks_kids) || new=
    # Done when both algorithms are there and no kid of before is left.
    if grep -q '^RS256 ' <<<"$new" && grep -q '^ES256 ' <<<"$new" &&
        [[ -z $(comm -12 <(awk '{print $2}' <<<"$old" | sort) <(awk '{print $2}' <<<"$new" | sort)) ]]; then
        break
    fi
    if ! bg_running oidc; then
        tail -n 20 "$OIDC_LOG" >&2 || true
        die "the OIDC provider (pid $pid) died while rotating its keys (see $OIDC_LOG)"
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$OIDC_LOG" >&2 || true
        die "the JWKS still shows old kids ${TIMEOUT}s after SIGHUP (see $OIDC_LOG)"
    fi
    sleep 0.2
done
info "new keys published at $OIDC_ISSUER"
printf '%s\n' "$new"
