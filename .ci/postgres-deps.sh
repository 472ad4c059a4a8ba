#!/bin/sh
# Install PostgreSQL's server binaries on a fresh Debian machine (run as root) for the
# tests that run the server on PostgreSQL. The tests start their own throwaway cluster
# under a temp dir (initdb + pg_ctl as the package's `postgres` user), not the cluster
# that the package itself may set up.
set -eu
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb
