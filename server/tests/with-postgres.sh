#!/usr/bin/env bash
# Runs a command (the server's tests) against a private, throw-away PostgreSQL cluster:
#
#   server/tests/with-postgres.sh cargo nextest run -p securesign-server
#
# initdb + pg_ctl as the `postgres` user (runuser when run as root, as CI does; as the
# calling user otherwise), data and unix socket in a temp directory, a free loopback
# port, trust authentication on loopback only. The command gets
# SECURESIGN_TEST_DATABASE=postgres and SECURESIGN_TEST_POSTGRES_URL (the superuser's URL
# without a database name: each test creates its own database). The cluster is stopped
# (pg_ctl stop, then its postmaster PID) and the directory removed on exit, whatever
# the command's result. Never touches a system PostgreSQL service.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "with-postgres: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (run server/install-test-deps.sh)" >&2
    exit 1
fi

as_db_user=()
if [ "$(id -u)" -eq 0 ]; then
    as_db_user=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/securesign-pg.XXXXXX)
chmod 0755 "$dir"
mkdir "$dir/data" "$dir/socket"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir/data" "$dir/socket"
fi

stop() {
    local pid
    if [ -f "$dir/data/postmaster.pid" ]; then
        pid=$(head -n 1 "$dir/data/postmaster.pid")
        "${as_db_user[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop > /dev/null 2>&1 || true
        if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then
            kill -KILL "$pid" 2> /dev/null || true
        fi
    fi
    rm -rf "$dir"
}
trap stop EXIT

"${as_db_user[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale > "$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}

# A free port: try a few random ones (pg_ctl -w fails fast when the port is taken).
started=
for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 30000))
    if "${as_db_user[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=32MB" \
        start > /dev/null 2>&1; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    echo "with-postgres: the cluster did not start:" >&2
    cat "$dir/data/server.log" >&2 || true
    exit 1
fi

export SECURESIGN_TEST_DATABASE=postgres
export SECURESIGN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port"
echo "with-postgres: private cluster on 127.0.0.1:$port ($dir)" >&2
"$@"
