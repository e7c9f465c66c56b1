#!/usr/bin/env bash
# devstack/unstack.sh: stop everything stack.sh started (by pid file; PostgreSQL with
# pg_ctlcluster, and only if stack.sh started it). Data stays in $STACK_DIR.
#
#   unstack.sh --purge   also drop the PostgreSQL databases and role stack.sh created and delete
#                        $STACK_DIR (passwords, keystone database, RabbitMQ node data,
#                        zun-compute state, containerd's content and snapshots (unmounting
#                        what is still mounted under its root), registry storage, seeded image
#                        archives, venvs, the OIDC provider's packages and signing keys, logs)
#                        and the `capsule` command it installed.
set -euo pipefail
shopt -s inherit_errexit

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TOP_DIR/.." && pwd)

PURGE=0
for arg in "$@"; do
    case $arg in
    --purge) PURGE=1 ;;
    -h | --help)
        sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "unknown argument: $arg" >&2
        exit 2
        ;;
    esac
done

# shellcheck source=devstack/lib/common
source "$TOP_DIR/lib/common"
# shellcheck source=devstack/lib/keystone
source "$TOP_DIR/lib/keystone"
# shellcheck source=devstack/lib/postgres
source "$TOP_DIR/lib/postgres"
# shellcheck source=devstack/lib/rabbitmq
source "$TOP_DIR/lib/rabbitmq"
# shellcheck source=devstack/lib/clients
source "$TOP_DIR/lib/clients"
# shellcheck source=devstack/lib/containerd
source "$TOP_DIR/lib/containerd"
# shellcheck source=devstack/lib/registry
source "$TOP_DIR/lib/registry"
# shellcheck source=devstack/lib/netavark
source "$TOP_DIR/lib/netavark"
# shellcheck source=devstack/lib/zun
source "$TOP_DIR/lib/zun"
# shellcheck source=devstack/lib/oidc
source "$TOP_DIR/lib/oidc"
# shellcheck source=devstack/lib/prometheus
source "$TOP_DIR/lib/prometheus"

[[ $(id -u) == 0 ]] || die "run unstack.sh as root"

if [[ ! -d $STACK_DIR ]]; then
    info "$STACK_DIR does not exist: nothing to stop"
    exit 0
fi

step "Stopping the services started from $STACK_DIR"
stop_prometheus
stop_zun_compute
stop_zun_api
stop_oidc
stop_rabbitmq
stop_keystone
stop_registry
stop_containerd

# Was the cluster started by this stack (then --purge may also remove our conf.d drop-in)?
PG_OURS=0
[[ -f $PG_STARTED_MARKER ]] && PG_OURS=1

if ((PURGE)); then
    if [[ ! -f $PASSWORDS_FILE || ! -d $PID_DIR ]] || [[ $STACK_DIR == / ]]; then
        die "$STACK_DIR does not look like a stack.sh state directory: not purging it"
    fi
    if command -v pg_ctlcluster >/dev/null && [[ -d /usr/lib/postgresql ]]; then
        if ! pg_running; then
            pg_ctlcluster "$(pg_version)" "$PG_CLUSTER" start
            touch "$PG_STARTED_MARKER"
            PG_OURS=1
        fi
        drop_postgres_databases
    fi
fi

if command -v pg_ctlcluster >/dev/null && [[ -d /usr/lib/postgresql ]]; then
    stop_postgres
fi

if ((PURGE)); then
    step "Purging $STACK_DIR"
    # Overlay mounts of containers' rootfs (under containerd's root, or the agent's state
    # directories) would let rm -rf reach into their lower layers: unmount them first, and never
    # cross into another file system.
    purge_containerd
    # The security-group table zun-compute kept for its capsules.
    if command -v nft >/dev/null && nft list table inet "$ZUN_FIREWALL_TABLE" >/dev/null 2>&1; then
        nft delete table inet "$ZUN_FIREWALL_TABLE"
    fi
    umount_under "$STACK_DIR"
    rm -rf --one-file-system -- "$STACK_DIR"
    # The capsule command stack.sh installed, only if it is still this repository's build
    # (same bytes): any other file at that path is left alone.
    if [[ -x $CAPSULE_CLI_INSTALL ]] && cmp -s "$CAPSULE_CLI_INSTALL" "$CAPSULE_CLI_BIN"; then
        rm -f "$CAPSULE_CLI_INSTALL" /etc/bash_completion.d/capsule
    fi
    # The listen-address drop-in stack.sh added to the cluster's conf.d, unless the cluster was
    # running before this stack (someone else's, or another stack's, who still relies on it).
    if ((PG_OURS)); then
        rm -f "/etc/postgresql/$(pg_version 2>/dev/null || echo none)/$PG_CLUSTER/conf.d/capsule.conf"
    fi
fi

for port in "$KEYSTONE_PORT" "$ZUN_API_PORT" "$ZUN_NETWORK_API_PORT" "$ZUN_VOLUME_API_PORT" "$ZUN_OIDC_PORT" "$RABBIT_PORT" "$RABBIT_DIST_PORT" "$EPMD_PORT" "$REGISTRY_PORT"; do
    if port_open "$port"; then
        warn "something still listens on 127.0.0.1:$port"
    fi
done
if [[ -S $CONTAINERD_SOCK ]] && containerd_answers; then
    warn "a containerd still answers on $CONTAINERD_SOCK"
fi
step "Stopped."
