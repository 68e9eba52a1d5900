#!/usr/bin/env bash
# CI job on Debian's PostgreSQL 15: install the distribution's server with
# PL/Python, install ruvector_dag into it with the Docker recipe's script,
# start a cluster with the extension preloaded, and run the system-server
# tests (pg_regress files, PL/Python coexistence, capture; base backups, a hot
# standby, promotion, dump and restore, a pg_auto_failover failover, and
# coexistence with pg_stat_statements, auto_explain, pg_qualstats,
# pg_stat_kcache, pg_wait_sampling and hypopg).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$(pwd)"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-server-dev-15 \
    postgresql-plpython3-15 postgresql-15-auto-failover pg-auto-failover-cli \
    postgresql-15-pg-qualstats postgresql-15-pg-stat-kcache postgresql-15-pg-wait-sampling postgresql-15-hypopg >/dev/null

export RUVECTOR_VENV=/opt/ruvector-dag-ci/venv
bash docker/install-into-postgres.sh 15
# The server needs only the engine (the recipe installs no extra); the tests' client needs
# the tools too (psycopg, and the embedded-server helper their shared fixtures import).
"$RUVECTOR_VENV/bin/pip" install --quiet --disable-pip-version-check --editable "$SRC[test]"

PGBIN=/usr/lib/postgresql/15/bin
WORK="$(mktemp -d /tmp/rvd-pg15.XXXXXX)"
# Stop the cluster (if it runs) and remove it (half a gigabyte a run; CI shares the disk).
trap 'su postgres -c "$PGBIN/pg_ctl -D $WORK/data -m fast -w stop >/dev/null" || true; rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
chown postgres:postgres "$WORK"
# A port below the kernel's ephemeral range, free now (a port inside it can be taken by any outgoing
# connection's local end; see free_port).
PORT="$("$RUVECTOR_VENV/bin/python" -c 'from ruvector_dag.tools.server import free_port; print(free_port())')"
su postgres -c "$PGBIN/initdb -D $WORK/data --auth=trust -U postgres >/dev/null"
cat >> "$WORK/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements,ruvector_dag'
ruvector.dag_worker_cpu_percent = 100
ruvector.dag_learn_query_rate = 1000000
ruvector.dag_capture_settled_fraction = 1
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
CONF
su postgres -c "$PGBIN/pg_ctl -D $WORK/data -l $WORK/server.log -w start >/dev/null"
su postgres -c "$PGBIN/psql -h 127.0.0.1 -p $PORT -U postgres -q -c 'CREATE EXTENSION ruvector_dag'"

RUVECTOR_SYSTEM_DSN="postgresql://postgres@127.0.0.1:$PORT/postgres" RUVECTOR_SYSTEM_PGBIN="$PGBIN" \
    "$RUVECTOR_VENV/bin/python" -m pytest -q -p no:cacheprovider "$SRC/tests/system" || {
        echo "--- server log ---"; tail -50 "$WORK/server.log"; exit 1; }
