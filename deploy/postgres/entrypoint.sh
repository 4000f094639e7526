#!/bin/sh
# Makes the cluster on the first start (an empty $PGDATA), then runs postgres in the foreground with "$@".
# The Unix socket trusts its users: only a shell inside this container reaches it (`psql -U runstream`).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "runstream-postgres: set POSTGRES_PASSWORD (the password of $POSTGRES_USER) for the first start" >&2
        exit 1
    fi
    printf '%s\n' "$POSTGRES_PASSWORD" | initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/dev/stdin \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" \
        | postgres --single -D "$PGDATA" -j -c "listen_addresses=" postgres >/dev/null
    echo "runstream-postgres: made the cluster in $PGDATA with the database $POSTGRES_DB"
fi
exec postgres -D "$PGDATA" -c unix_socket_directories=/var/run/postgresql -c jit=off "$@"
