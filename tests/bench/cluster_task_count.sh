#!/usr/bin/env bash
# Count the tasks a whole smcp.platform.cluster run starts per play on the first control plane
# (issue 13, Deliver 6): molecule scenario `cluster` (3 control planes + 1 worker, fresh sandbox hosts),
# first converge and a re-run, with the task_count callback; prints the per-play table.
# Usage (heavy: starts sandbox hosts, ~15 min):
#   flock /tmp/smcp-heavy.lock tests/bench/cluster_task_count.sh [HOST]   (default mol-cluster-1)
# Keeps the hosts for inspection; `molecule destroy -s cluster` removes them.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH" ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.venv/collections" ANSIBLE_HOME="$ROOT/.ansible"
host=${1:-mol-cluster-1}
out=$(mktemp -d /tmp/smcp-task-count.XXXXXX)
molecule destroy -s cluster >/dev/null
molecule create -s cluster >"$out/create.log"
molecule prepare -s cluster >"$out/prepare.log"
export ANSIBLE_CALLBACKS_ENABLED=task_count ANSIBLE_CALLBACK_PLUGINS="$ROOT/tests/bench/callbacks"
SMCP_TASK_COUNT_FILE="$out/first.jsonl" molecule converge -s cluster >"$out/first.log"
SMCP_TASK_COUNT_FILE="$out/rerun.jsonl" molecule converge -s cluster >"$out/rerun.log"
python3 tests/bench/task_table.py --host "$host" "$out/first.jsonl" "$out/rerun.jsonl"
echo "logs and raw counts: $out" >&2
