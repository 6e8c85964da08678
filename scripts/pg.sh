#!/usr/bin/env bash
# A throwaway PostgreSQL for tests, from Debian's package (no service, no systemd).
#   scripts/pg.sh start [DIR]   initdb in DIR (default: a new temp dir) as the postgres user, start it on a
#                               free port on 127.0.0.1 (socket in DIR), print the URL on stdout
#   scripts/pg.sh stop DIR      stop it and remove DIR
#   scripts/pg.sh url DIR       print the URL of a running instance
# Env: PG_BIN (default: newest /usr/lib/postgresql/*/bin).
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[[ -x ${PG_BIN:-}/initdb ]] || { echo "pg.sh: no PostgreSQL binaries; apt-get install postgresql" >&2; exit 2; }

as_pg() {  # run as the postgres user when we are root (initdb refuses root)
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd=${1:-}; dir=${2:-}
case $cmd in
  start)
    [[ -n $dir ]] || dir=$(mktemp -d /tmp/smcp-pg.XXXXXX)
    mkdir -p "$dir"
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    chmod 0700 "$dir"
    port=$(free_port)
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    echo "pg.sh: started in $dir (stop: scripts/pg.sh stop $dir)" >&2
    ;;
  stop)
    [[ -d $dir/data ]] || { echo "pg.sh: $dir is not a pg.sh instance" >&2; exit 2; }
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  url)
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
    ;;
  *)
    echo "usage: $0 start [DIR] | stop DIR | url DIR" >&2; exit 2 ;;
esac
