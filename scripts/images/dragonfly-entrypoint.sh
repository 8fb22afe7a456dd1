#!/bin/sh
# Test stand-in for the Dragonfly image (Debian's redis-server inside, same protocol): the
# same interface — port 6379, data in /data, flags from DFLY_<flag> variables or arguments:
# DFLY_requirepass, DFLY_tls, DFLY_tls_cert_file, DFLY_tls_key_file, DFLY_tls_ca_cert_file.
set -eu
set -- --bind 0.0.0.0 --dir /data --protected-mode no --save "" --appendonly yes "$@"
[ -n "${DFLY_requirepass:-}" ] && set -- "$@" --requirepass "$DFLY_requirepass"
if [ "${DFLY_tls:-false}" = true ]; then
    set -- "$@" --port 0 --tls-port 6379 --tls-cert-file "$DFLY_tls_cert_file" \
        --tls-key-file "$DFLY_tls_key_file" --tls-protocols TLSv1.3
    if [ -n "${DFLY_tls_ca_cert_file:-}" ]; then
        set -- "$@" --tls-ca-cert-file "$DFLY_tls_ca_cert_file" --tls-auth-clients optional
    else
        set -- "$@" --tls-auth-clients no
    fi
else
    set -- "$@" --port 6379
fi
exec redis-server "$@"
