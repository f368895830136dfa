#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and benchmarks, and print its URL.
#   scripts/pg-throwaway.sh start DIR   -> initdb + pg_ctl start in DIR (unix socket there, no TCP)
#   scripts/pg-throwaway.sh stop DIR    -> pg_ctl stop, then remove DIR
# As root (CI) the cluster runs as the postgres user, which Debian's package creates.
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?folder}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$bindir" ] || { echo "pg-throwaway: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U ppt --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
      "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql+psycopg://ppt@/postgres?host=$dir"
    ;;
  stop)
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
