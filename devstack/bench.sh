#!/usr/bin/env bash
# devstack/bench.sh [NAME...]: run the benchmarks against the real stack and print their
# figures (p50/p99 and rates). Brings the stack up first, like run-tests.sh.
#   devstack/bench.sh          every benchmark
#   devstack/bench.sh api      GET /v1/capsules throughput and API create latency
#   devstack/bench.sh rpc      compute RPC round trip and message rates
#   devstack/bench.sh pod      real pods: create -> Running, delete -> gone, vs podman; memory
#   devstack/bench.sh exec     exec round trip and stats of a running container, vs podman's
#   devstack/bench.sh probes   host CPU of 100 capsules probed every second (exec, TCP), vs podman
#   devstack/bench.sh sg       security-group rule change -> in the compute host's nftables
#   devstack/bench.sh oidc     OIDC bearer-token validation, cached and not
# Each benchmark leaves its figures in bench/out/NAME.json; then bench-report merges whatever is
# there into bench/results.json and bench/create-latency.svg and prints the table of targets,
# our figures, podman's and the ratio.
set -euo pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-/opt/capsule}

"$TOP_DIR/devstack/stack.sh"

# shellcheck disable=SC1091
source "$STACK_DIR/etc/test-env"
cd "$TOP_DIR"
if (($# == 0)); then
    set -- api rpc pod exec probes sg oidc
fi
for bench in "$@"; do
    case $bench in
        api) cargo bench --locked -p zun-api --bench api ;;
        rpc) cargo bench --locked -p e2e --bench rpc ;;
        pod) cargo bench --locked -p e2e --bench pod ;;
        exec) cargo bench --locked -p e2e --bench exec ;;
        probes) cargo bench --locked -p e2e --bench probes ;;
        sg) cargo bench --locked -p tempest --bench secgroups ;;
        oidc) cargo bench --locked -p zun-api --bench oidc ;;
        *)
            echo "unknown benchmark $bench (known: api, rpc, pod, exec, probes, sg, oidc)" >&2
            exit 2
            ;;
    esac
done
cargo run --locked --quiet -p bench --bin bench-report
