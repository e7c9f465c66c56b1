#!/usr/bin/env bash
# devstack/stack.sh: install, configure and start every real component of a capsule cloud on
# this host (as root): Keystone, PostgreSQL, RabbitMQ, the python clients, the pod runtime's host
# parts (containerd, a local registry seeded with busybox and nginx images, netavark), zun-api,
# zun-compute; then run the main job.
#
# Idempotent: a second run changes nothing that works and restarts nothing that runs, unless
# its binary or configuration changed.
#
# Knobs (environment):
#   STACK_DIR=/opt/capsule     state: etc/ (config, passwords), logs/, pids/, data/, venvs
#   DATABASE=sqlite|postgres   zun-api's database (PostgreSQL is always started, for tests)
#   KEYSTONE_PORT=5000  ZUN_API_PORT=9517  RABBIT_PORT=5672
#   ZUN_NETWORK_API_PORT=9696  security groups (Neutron's API subset; catalog type `network`)
#   ZUN_VOLUME_API_PORT=8776   volumes (Cinder's v3 API subset; catalog type `block-storage`)
#   ZUN_API_METRICS_PORT=9519  zun-api's Prometheus metrics (127.0.0.1, GET /metrics)
#   ZUN_COMPUTE_METRICS_PORT=9520  zun-compute's metrics and health (127.0.0.1, GET /metrics,
#                              /healthz); extra compute hosts take the next ports
#   PROMETHEUS_PORT=9090       Prometheus (Debian's), scraping zun-api and every zun-compute
#   COMPUTE_HOST=$(hostname -s)  host name of the zun-compute on this machine
#   EXTRA_COMPUTE_HOSTS="compute2 ..."  more zun-computes here, one per name (scheduler tests)
#   ZUN_DB_USER=zun ZUN_DB_NAME=zun ZUN_TEST_DB_NAME=zun_test   PostgreSQL role and databases
#   REGISTRY_PORT=5100         the local image registry (127.0.0.1, plain HTTP)
#   ZUN_OIDC_PORT=9100         the OpenID Connect provider (node-oidc-provider, plain HTTP;
#                              lib/oidc): client-credentials JWT access tokens for the capsule API
#   ZUN_OIDC_ENABLED=1|0       1 (default): zun-api accepts that provider's tokens (an [oidc]
#                              section in its config); 0: Keystone tokens only
#   NETAVARK=crates|debian     netavark 2.1 built from crates.io with its nftables firewall
#                              (cargo install, ~5 minutes once; NETAVARK_CRATES_VERSION), or
#                              Debian's netavark 1.4 with iptables (no build, slower)
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

EXAMPLE_CAPSULE=${EXAMPLE_CAPSULE:-$REPO_DIR/examples/minimal.yaml}

[[ $(id -u) == 0 ]] || die "run stack.sh as root"

# Debian packages everything below needs (one apt-get install, update only when one is missing).
PACKAGES=(
    python3 python3-venv python3-dev build-essential libffi-dev libssl-dev
    postgresql postgresql-client rabbitmq-server
    curl jq openssl ca-certificates sqlite3 procps iproute2 util-linux
    # The pod runtime: containerd, a registry, netavark and its firewall tools; the files the
    # seeded images are built from (busybox-static, nginx-light); for building the runtime
    # (libseccomp-dev, protobuf-compiler); skopeo to inspect images; podman, catatonit and runc
    # for the benchmark peer.
    containerd docker-registry netavark iptables nftables busybox-static nginx-light
    libseccomp-dev protobuf-compiler skopeo podman catatonit runc
    # Scrapes zun-api and zun-compute (lib/prometheus).
    prometheus
)
# The OIDC provider (lib/oidc) runs on node: Debian's nodejs and npm, unless the host has a node
# already (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null; then
    PACKAGES+=(nodejs npm)
elif ! command -v npm >/dev/null; then
    PACKAGES+=(npm)
fi

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
    run_logged "$LOG_DIR/apt.log" apt_no_autostart \
        apt-get install -y --no-install-recommends "${PACKAGES[@]}"
}

# The pod runtime's host parts (docs/runtime.md, "Host layout").
runtime_steps() {
    install_netavark
    configure_containerd
    start_containerd
    configure_registry
    start_registry
    seed_registry
    configure_registry_mirrors
}

# The OpenID Connect provider, before zun-api (which reads its discovery document at start).
oidc_steps() {
    install_oidc
    configure_oidc
    start_oidc
}

zun_steps() {
    install_zun
    configure_zun
    start_zun_api
    configure_zun_compute
    start_zun_compute
    configure_prometheus
    start_prometheus
}

# capsule_status NAME: the capsule's status as demo sees it, or nothing if there is none.
capsule_status() {
    timeout 60 openstack capsule show "$1" -f value -c status 2>/dev/null || true
}

# The main job: as user demo, create the example capsule (once; again if it failed before),
# wait until it settles, list and describe it.
main_job() {
    local name status i
    step "Main job: the example capsule, as user demo"
    [[ -f $EXAMPLE_CAPSULE ]] || die "no $EXAMPLE_CAPSULE"
    set +u
    # shellcheck source=devstack/openrc
    source "$TOP_DIR/openrc" demo demo
    set -u
    name=$("$CLIENTS_VENV/bin/python" -c \
        'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$EXAMPLE_CAPSULE")
    status=$(capsule_status "$name")
    if [[ $status == Error ]]; then
        info "capsule $name is in Error from an earlier run: deleting it to create it again"
        timeout 60 zun capsule-delete "$name"
        for ((i = 0; i < 60; i++)); do
            [[ -n $(capsule_status "$name") ]] || break
            sleep 1
        done
        status=
    fi
    if [[ -n $status ]]; then
        info "capsule $name already exists ($status)"
    else
        info "zun capsule-create -f $EXAMPLE_CAPSULE"
        timeout 60 zun capsule-create -f "$EXAMPLE_CAPSULE"
    fi
    for ((i = 0; i < 60; i++)); do
        status=$(capsule_status "$name")
        [[ $status == Creating || $status == Deleting ]] || break
        sleep 1
    done
    info "zun capsule-list"
    timeout 60 zun capsule-list
    info "zun capsule-describe $name"
    timeout 60 zun capsule-describe "$name"
    [[ $status == Running ]] || die "capsule $name ended $status, not Running (see $LOG_DIR/zun-*.log)"
}

START=$SECONDS
step "capsule devstack: STACK_DIR=$STACK_DIR DATABASE=$DATABASE (repo $REPO_DIR)"
ensure_dirs
install_packages
ensure_passwords

runtime_steps

install_keystone
configure_keystone
init_keystone
start_keystone
create_keystone_accounts

configure_postgres
start_postgres
create_postgres_databases
write_test_env

configure_rabbitmq
start_rabbitmq
create_rabbitmq_accounts

oidc_steps

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
  OIDC:         $(oidc_summary)
  PostgreSQL:   127.0.0.1:$PG_PORT (role $PG_DB_USER; databases ${PG_DATABASES[*]})   log: /var/log/postgresql/
  RabbitMQ:     amqp://$RABBIT_USER:***@127.0.0.1:$RABBIT_PORT/$RABBIT_VHOST (node $RABBIT_NODENAME, data $RABBIT_DIR)
                logs: $RABBIT_LOG_DIR/, $RABBIT_LOG, $EPMD_LOG
                rabbitmqctl: (source $TOP_DIR/lib/common; source $TOP_DIR/lib/rabbitmq; rabbitmqctl_cmd list_queues -p $RABBIT_VHOST)
  containerd:   $(containerd_summary)
                ctr: ctr --address $CONTAINERD_SOCK -n $CONTAINERD_NAMESPACE images ls
  Registry:     $(registry_summary)
                images: $REGISTRY_ADDR/library/busybox:latest, $REGISTRY_ADDR/library/nginx:latest
                (log: $IMAGES_LOG); archives: $IMAGES_DIR/busybox.{oci,docker}.tar
                mirrors: $REGISTRY_CERTS_D/ (docker.io -> $REGISTRY_URL)
  netavark:     $(netavark_summary)
  Prometheus:   $(prometheus_summary)
  Other logs:   $LOG_DIR/   pids: $PID_DIR/   stop: $TOP_DIR/unstack.sh [--purge]
EOF
zun_compute_summary | sed 's/^/  zun-compute:  /'
if [[ $ZUN_COMPUTE_DRIVER == fake ]]; then
    warn 'zun-compute runs the "fake" runtime driver (ZUN_COMPUTE_DRIVER=fake): capsules are scheduled, tracked and reported, but no containers run.'
fi
