#!/usr/bin/env bash
# Runs the benchmarks under tests/bench/ (never part of `make test`): medians over several runs,
# ratios against direct ansible-playbook, JSON results in tests/bench/results/.
# Usage: scripts/bench.sh [sandbox|prepare|api]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$PWD/.venv/collections"
which=("$@")
((${#which[@]})) || which=(sandbox prepare api)
for b in "${which[@]}"; do
  case $b in
    sandbox) python tests/bench/sandbox_up.py ;;
    prepare) python tests/bench/prepare_hosts.py --with-etcd ;;
    api) python tests/bench/api_bench.py ;;
    *) echo "usage: $0 [sandbox|prepare|api]..." >&2; exit 2 ;;
  esac
done
