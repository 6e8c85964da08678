#!/usr/bin/env bash
# The README's main command (`make demo`): start the management API on this machine (SQLite),
# create HOSTS sandbox hosts and register them through the API, then run a prepare_hosts job on
# them and follow it live. Exits non-zero when any step fails (smcpctl exit codes: docs/cli.md).
# Idempotent: a second run reuses the API and the sandbox; its prepare_hosts run changes nothing.
# Usage: scripts/demo.sh [HOSTS]   (default 3; SMCP_DEMO_SANDBOX names the sandbox, default "demo")
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$ROOT/.venv/collections"

hosts=${1:-3}
name=${SMCP_DEMO_SANDBOX:-demo}
if ! [[ $hosts =~ ^[0-9]+$ ]] || ((hosts < 1 || hosts > 64)); then
  echo "usage: $0 [HOSTS]  (HOSTS: 1-64, got '$hosts')" >&2
  exit 2
fi
if ! command -v smcpctl >/dev/null; then
  echo "smcpctl not found: run 'make setup' first" >&2
  exit 2
fi

echo "==> smcpctl up --sandbox $hosts --sandbox-name $name"
smcpctl up --sandbox "$hosts" --sandbox-name "$name"

echo "==> smcpctl job run prepare_hosts -l sandbox=$name --wait"
smcpctl job run prepare_hosts -l "sandbox=$name" --wait

echo
echo "Done. Next: smcpctl host list | smcpctl job list | smcpctl down --sandbox (stop the API, remove the hosts)"
# The web console of the same API (docs/console.md): the bootstrap admin signs in with its token.
token_file=$(python -c 'from smcp_api.cli.local import api_dir; print(api_dir() / "admin.token")')
url=${SMCP_URL:-http://127.0.0.1:8780}
echo "Console: ${url%/}/console/  (sign in with the admin token: cat $token_file)"
