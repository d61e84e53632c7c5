#!/bin/sh
# The secrets compose.yaml reads, made once on the host that runs it (never committed):
#   deploy/secrets/postgres_password  the database password (a compose secret)
#   deploy/secrets/gateway.env        GATEWAY_DATABASE_URL with that password, and
#                                     GATEWAY_METRICS_TOKEN, Prometheus's bearer token
# Usage: sh deploy/make-secrets.sh [folder]   (default: deploy/secrets next to this file)
# Existing files are kept: a new password would lock the gateway out of its database.
set -eu
dir=${1:-$(dirname "$0")/secrets}
python=${PYTHON:-python3}
mkdir -p "$dir"
umask 077
random() { "$python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
if [ ! -s "$dir/postgres_password" ]; then
    random > "$dir/postgres_password"
fi
if [ ! -s "$dir/gateway.env" ]; then
    password=$(cat "$dir/postgres_password")
    {
        echo "GATEWAY_DATABASE_URL=postgresql+asyncpg://gateway:${password}@postgres:5432/gateway"
        echo "GATEWAY_METRICS_TOKEN=$(random)"
    } > "$dir/gateway.env"
fi
echo "secrets in $dir: postgres_password, gateway.env"
