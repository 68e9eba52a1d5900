#!/usr/bin/env bash
# Install ruvector_dag into a Debian/Ubuntu PostgreSQL: the official `postgres`
# images (Debian + PGDG packages) and Debian's own postgresql-NN packages.
#
#   docker/install-into-postgres.sh PG_MAJOR
#
# Installs the build tools and server headers with apt-get, creates a
# virtualenv with the engine's dependencies (numpy, numba, cffi) on the
# system python3 (the interpreter PL/Python uses too, so both share one
# libpython), builds the shim against /usr/lib/postgresql/PG_MAJOR and makes
# everything readable by the server user.  The Dockerfile runs this script,
# and so does CI on Debian's PostgreSQL 15, so the recipe itself is tested.
#
# Environment: RUVECTOR_VENV (default /opt/ruvector-dag/venv).
set -euo pipefail

PG_MAJOR="${1:?usage: install-into-postgres.sh PG_MAJOR}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${RUVECTOR_VENV:-/opt/ruvector-dag/venv}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    python3 python3-venv python3-dev gcc make "postgresql-server-dev-${PG_MAJOR}" >/dev/null

# The distribution's interpreter, whatever else is first on PATH (pyenv, conda).
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/pip" install --quiet --disable-pip-version-check --editable "$SRC"
"$VENV/bin/python" "$SRC/build.py" --pg-config "$PG_CONFIG"

# The server runs as an unprivileged user: it must read the engine and its packages.
chmod -R a+rX "$SRC/ruvector_dag" "$VENV"
dir="$SRC"
while [ "$dir" != "/" ]; do chmod o+x "$dir"; dir="$(dirname "$dir")"; done

echo "ruvector_dag installed for PostgreSQL ${PG_MAJOR}; add shared_preload_libraries = 'ruvector_dag'"
