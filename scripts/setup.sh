#!/usr/bin/env bash
# One-command, idempotent developer/CI setup for smcp.
#  - installs the Debian packages the sandbox and tests need (only the missing ones)
#  - creates .venv with the pinned Python dependencies (only when the pins changed)
#  - makes the working tree importable as the collection smcp.platform
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Debian's own Python by default: jobs run as unprivileged job users, who must be able to execute the
# venv's interpreter (a Python under /root, e.g. pyenv's, is out of their reach).
PY=${PYTHON:-/usr/bin/python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

log() { printf '==> %s\n' "$*"; }

# Debian packages: sandbox hosts (podman stack, debootstrap, apt cache, egress guard),
# and the real services the tests run (PostgreSQL, etcd client, sshd: the host-key tests start their own
# on a free port of 127.0.0.1 with their own config and keys; RabbitMQ: the dispatch tests start their own
# node in a temporary directory, the system service is not started here; Prometheus: its promtool tests the
# management plane's alert rules, the system service is not started either; slapd: the LDAP login tests start
# their own server on a free port with a generated configuration, the system one is not configured nor started).
DEB_PKGS=(debootstrap podman runc netavark aardvark-dns iptables nftables apt-cacher-ng
          openssh-client openssh-server rsync make git postgresql etcd-client python3-venv rabbitmq-server
          prometheus chromium chromium-driver slapd ldap-utils)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}; run 'sudo make setup' or install them with apt-get" >&2
    exit 2
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt-cacher-ng asks about tunnelling on install; answer no without a prompt.
  echo "apt-cacher-ng apt-cacher-ng/tunnelenable boolean false" | debconf-set-selections
  # slapd would ask for a domain and an admin password: no system directory at all (the tests make their own).
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # PostgreSQL's package starts a cluster only where systemd runs; tests start their own.
  # So does RabbitMQ's: the tests start their own node, the system one is stopped and left disabled.
  if [[ " ${missing[*]} " == *" rabbitmq-server "* && -d /run/systemd/system ]]; then
    systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" slapd "* && -d /run/systemd/system ]]; then
    systemctl disable --now slapd >/dev/null 2>&1 || true
  fi
fi

# Python venv with pinned dependencies; reinstall only when pins or the project changed.
stamp_src=$(cat requirements/constraints.txt pyproject.toml | sha256sum | cut -c1-16)
base=$(dirname "$(readlink -f "$(command -v "$PY")")")
if [[ -f .venv/pyvenv.cfg ]] && ! grep -qx "home = $base" .venv/pyvenv.cfg; then
  log "recreating .venv on $PY (it was built on another interpreter)"
  rm -rf .venv
fi
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
if [[ "$(cat .venv/.smcp-stamp 2>/dev/null)" != "$stamp_src" ]]; then
  log "installing pinned Python dependencies"
  .venv/bin/python -m pip install -q --upgrade -c requirements/constraints.txt pip
  .venv/bin/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
  echo "$stamp_src" > .venv/.smcp-stamp
fi

# The working tree is the collection: expose it as ansible_collections/smcp/platform.
mkdir -p .venv/collections/ansible_collections/smcp
ln -sfn "$ROOT" .venv/collections/ansible_collections/smcp/platform
mkdir -p .cache/facts

log "ready: source .venv/bin/activate (ANSIBLE_COLLECTIONS_PATH=$ROOT/.venv/collections is set by make)"
