#!/bin/sh
# Test stand-in for the official `postgres` image's entrypoint (Debian's PostgreSQL inside):
# the same interface — POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust),
# POSTGRES_USER (default postgres), POSTGRES_DB (default: the user), PGDATA (default
# /var/lib/postgresql/data), port 5432 on every interface, extra arguments passed to the
# server (`-c ssl=on -c ssl_cert_file=…`). Started as root it takes ownership of PGDATA and
# drops to the postgres user, as the official image does.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
export PGDATA PATH="$BIN:$PATH"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        echo "Error: POSTGRES_PASSWORD is not set (the official image refuses to start too)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$method" --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all $method" >>"$PGDATA/pg_hba.conf"
    pg_ctl -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
            -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
    fi
    pg_ctl -m fast -w stop >/dev/null
fi
exec postgres -c listen_addresses='*' "$@"
