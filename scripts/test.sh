#!/usr/bin/env bash
# Runs the smcp test stages and fails when any stage fails (all stages run either way).
# Usage: scripts/test.sh [all|lint|sanity|pytest|molecule] [molecule scenario...]
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.venv/collections"
export ANSIBLE_HOME="$ROOT/.ansible"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

what=${1:-all}; shift || true
declare -a results=()
failed=0

stage() {  # stage NAME CMD...
  local name=$1; shift
  local t0=$SECONDS
  printf '\n===== %s: %s\n' "$name" "$*"
  if "$@"; then
    results+=("PASS  $name ($((SECONDS - t0)) s)")
  else
    results+=("FAIL  $name ($((SECONDS - t0)) s)")
    failed=1
  fi
}

run_lint() {
  stage ruff-check ruff check .
  stage ruff-format ruff format --check .
  stage mypy mypy api/smcp_api
  stage yamllint yamllint -s .
  stage ansible-lint ansible-lint --offline --profile production
}

run_sanity() {
  if compgen -G "plugins/*/*.py" >/dev/null; then
    stage ansible-test-sanity scripts/sanity.sh
  fi
}

run_pytest() {  # run_pytest [extra pytest args]
  stage pytest pytest -p no:cacheprovider tests/unit tests/integration tests/api "$@"
}

# Tests that measure the machine-wide apt cache under load: they run after the lanes, alone, because
# the molecule scenarios' hosts use the same cache (their refreshes would be counted against the test).
ALONE=(tests/integration/test_aptcache_live.py)

run_molecule() {
  local scenarios=("$@")
  if ((${#scenarios[@]} == 0)); then
    # A scenario with a .not-in-ci file needs machines this one does not have (e2e: real hosts).
    for d in extensions/molecule/*/molecule.yml; do
      [[ -e $d && ! -e $(dirname "$d")/.not-in-ci ]] && scenarios+=("$(basename "$(dirname "$d")")")
    done
  fi
  for s in "${scenarios[@]}"; do
    stage "molecule-$s" molecule test -s "$s"
  done
}

# pytest and the molecule scenarios are independent (each live test and scenario has its own sandbox name):
# they run side by side, each lane's output kept in a log and printed when both are done.
run_lanes() {
  local logs; logs=$(mktemp -d)
  ( results=(); failed=0; run_pytest "${ALONE[@]/#/--ignore=}"; printf '%s\n' "${results[@]}" > "$logs/pytest.results"; exit $failed ) > "$logs/pytest.log" 2>&1 &
  local lane_pytest=$!
  ( results=(); failed=0; run_molecule; printf '%s\n' "${results[@]}" > "$logs/molecule.results"; exit $failed ) > "$logs/molecule.log" 2>&1 &
  local lane_molecule=$!
  wait $lane_molecule || failed=1
  wait $lane_pytest || failed=1
  cat "$logs/molecule.log" "$logs/pytest.log"
  mapfile -t -O "${#results[@]}" results < <(cat "$logs/molecule.results" "$logs/pytest.results" 2>/dev/null)
  rm -rf "$logs"
}

case $what in
  all) run_lint; run_sanity; run_lanes; stage pytest-alone pytest -p no:cacheprovider "${ALONE[@]}" ;;
  lint) run_lint ;;
  sanity) run_sanity ;;
  pytest) run_pytest ;;
  molecule) run_molecule "$@" ;;
  *) echo "usage: $0 [all|lint|sanity|pytest|molecule [scenario...]]" >&2; exit 2 ;;
esac

printf '\n===== summary\n'
printf '%s\n' "${results[@]}"
exit $failed
