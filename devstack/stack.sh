#!/usr/bin/env bash
# devstack/stack.sh: install, configure and start every real component of a capsule cloud on
# this host (as root): Keystone, PostgreSQL, the python clients, zun-api; then run the main job.
#
# Idempotent: a second run changes nothing that works and restarts nothing that runs, unless
# its binary or configuration changed.
#
# Knobs (environment):
#   STACK_DIR=/opt/capsule     state: etc/ (config, passwords), logs/, pids/, data/, venvs
#   DATABASE=sqlite|postgres   zun-api's database (PostgreSQL is always started, for tests)
#   KEYSTONE_PORT=5000  ZUN_API_PORT=9517
#   ZUN_DB_USER=zun ZUN_DB_NAME=zun ZUN_TEST_DB_NAME=zun_test   PostgreSQL role and databases
set -euo pipefail
shopt -s inherit_errexit

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TOP_DIR/.." && pwd)

# shellcheck source=devstack/lib/common
source "$TOP_DIR/lib/common"
# shellcheck source=devstack/lib/keystone
source "$TOP_DIR/lib/keystone"
# shellcheck source=devstack/lib/postgres
source "$TOP_DIR/lib/postgres"
# shellcheck source=devstack/lib/clients
source "$TOP_DIR/lib/clients"
# shellcheck source=devstack/lib/zun
source "$TOP_DIR/lib/zun"

EXAMPLE_CAPSULE=${EXAMPLE_CAPSULE:-$REPO_DIR/examples/minimal.yaml}

[[ $(id -u) == 0 ]] || die "run stack.sh as root"

# Debian packages everything below needs (one apt-get install, update only when one is missing).
PACKAGES=(
    python3 python3-venv python3-dev build-essential libffi-dev libssl-dev
    postgresql postgresql-client
    curl jq openssl ca-certificates sqlite3 procps iproute2 util-linux
)

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        info "Debian packages already installed"
        return 0
    fi
    step "apt-get install ${missing[*]} (log: $LOG_DIR/apt.log)"
    export DEBIAN_FRONTEND=noninteractive
    run_logged "$LOG_DIR/apt.log" apt-get update
    run_logged "$LOG_DIR/apt.log" apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

zun_steps() {
    install_zun
    configure_zun
    start_zun_api
}

# The main job: as user demo, create the example capsule (once), list and describe it.
main_job() {
    local name
    step "Main job: the example capsule, as user demo"
    [[ -f $EXAMPLE_CAPSULE ]] || die "no $EXAMPLE_CAPSULE"
    set +u
    # shellcheck source=devstack/openrc
    source "$TOP_DIR/openrc" demo demo
    set -u
    name=$("$CLIENTS_VENV/bin/python" -c \
        'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$EXAMPLE_CAPSULE")
    if timeout 60 zun capsule-describe "$name" >/dev/null 2>&1; then
        info "capsule $name already exists"
    else
        info "zun capsule-create -f $EXAMPLE_CAPSULE"
        timeout 60 zun capsule-create -f "$EXAMPLE_CAPSULE"
    fi
    info "zun capsule-list"
    timeout 60 zun capsule-list
    info "zun capsule-describe $name"
    timeout 60 zun capsule-describe "$name"
}

START=$SECONDS
step "capsule devstack: STACK_DIR=$STACK_DIR DATABASE=$DATABASE (repo $REPO_DIR)"
ensure_dirs
install_packages
ensure_passwords

install_keystone
configure_keystone
init_keystone
start_keystone
create_keystone_accounts

configure_postgres
start_postgres
create_postgres_databases
write_test_env

install_clients

zun_steps
main_job

step "Done in $((SECONDS - START))s."
cat <<EOF
  Credentials:  source $TOP_DIR/openrc [USER] [PROJECT]   (default admin admin; also demo demo,
                demo-reader demo, alt_demo alt_demo), then: openstack token issue; zun capsule-list
  Test env:     $TEST_ENV_FILE
  Keystone:     $KEYSTONE_AUTH_URL   logs: $KEYSTONE_LOG, $LOG_DIR/keystone-uwsgi.log
  zun-api:      $ZUN_API_URL   config: $ZUN_API_CONF   log: $ZUN_API_LOG
  PostgreSQL:   127.0.0.1:$PG_PORT (role $PG_DB_USER; databases ${PG_DATABASES[*]})   log: /var/log/postgresql/
  Other logs:   $LOG_DIR/   pids: $PID_DIR/   stop: $TOP_DIR/unstack.sh [--purge]
EOF
