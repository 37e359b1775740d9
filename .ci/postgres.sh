#!/usr/bin/env bash
# A throwaway PostgreSQL server for the PostgresStore tests, on 127.0.0.1 only.
#
#   bash .ci/postgres.sh install                       # as root: Debian's postgresql package
#   FOXAGENT_TEST_POSTGRES="$(bash .ci/postgres.sh)"   # start; prints the conninfo on stdout, alone
#   export FOXAGENT_TEST_POSTGRES
#   bash .ci/postgres.sh stop                          # stop the server (the data stay)
#
# Only `install` installs anything (apt-get, as root; `make postgres-deps` runs it, and so does
# .ci/run): starting never installs system packages behind the caller's back. Starting
# initialises a cluster of its own under /tmp (never touching a system cluster), starts it, and
# makes a role and a database with a password. Every step checks first, so a second run only
# confirms that the server answers (well under a second). Progress goes to stderr; stdout
# carries only the conninfo, which is also written to "$ROOT/conninfo".
#
# Exit status: 0 done; 3 PostgreSQL's server programs are not installed (tests/conftest.py
# skips the PostgreSQL tests on it, saying so); anything else, a failure.
#
# Settings: FOXAGENT_PG_PORT (default 54329), FOXAGENT_PG_DIR (default
# /tmp/foxagent-postgres-$PORT; the tests use a fresh one per session and delete it) and
# FOXAGENT_PG_BIN (the directory of initdb and pg_ctl; found when unset). The
# password is fixed and public: the server listens on the loopback interface only and holds
# nothing but test data.
set -euo pipefail

PORT="${FOXAGENT_PG_PORT:-54329}"
ROOT="${FOXAGENT_PG_DIR:-/tmp/foxagent-postgres-$PORT}"
DATA="$ROOT/data"
ROLE=foxagent
PASSWORD=foxagent-test-only
DATABASE=foxagent_test
CONNINFO="postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"

log() { echo "postgres.sh: $*" >&2; }

# Run a chatty command with its output kept in a file, shown only when it fails.
quietly() {
    local out status=0
    out="$(mktemp)"
    "$@" >"$out" 2>&1 || status=$?
    if [[ $status != 0 ]]; then
        log "failed ($status): $*"
        tail -n 40 "$out" >&2
    fi
    rm -f "$out"
    return "$status"
}

# The newest installed major version's binaries (Debian keeps them off PATH), else the
# directory of an initdb on PATH (other systems). Prints nothing (and succeeds: this runs
# under pipefail) when none is installed.
find_bin() {
    local found=""
    if [[ -d /usr/lib/postgresql ]]; then
        found="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin | sort -V | tail -n 1)"
    fi
    if [[ -z "$found" ]] && command -v initdb >/dev/null; then
        found="$(dirname "$(command -v initdb)")"
    fi
    echo "$found"
}

# True when the pid file names a live postmaster of THIS data directory. After a machine or
# session stop the file is stale, and its pid may since belong to an unrelated process, which
# would make the server refuse to start ("lock file already exists").
ours_running() {
    local pid
    [[ -f "$DATA/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$DATA/postmaster.pid")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DATA"
}

# PostgreSQL refuses to run as root: as root, run the server's tools as the package's user.
if [[ "$(id -u)" == 0 ]]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

installed() { [[ -n "$BIN" && -x "$BIN/initdb" && -x "$BIN/pg_ctl" ]]; }

BIN="${FOXAGENT_PG_BIN:-$(find_bin)}"
case "${1:-start}" in
stop)
    if ours_running; then
        as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -s >&2
    else
        log "not running"
    fi
    exit 0
    ;;
install)
    if installed; then
        log "PostgreSQL is installed ($BIN)"
        exit 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        log "installing Debian's postgresql package needs root: sudo bash .ci/postgres.sh install"
        exit 1
    fi
    log "installing Debian's postgresql package (apt-get update, apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    # A clean machine may have stale or no package lists: refresh them before installing.
    quietly apt-get update -q
    quietly apt-get install -y -q --no-install-recommends postgresql
    BIN="$(find_bin)"
    installed || { log "the postgresql package installed no server programs"; exit 1; }
    log "PostgreSQL is installed ($BIN)"
    exit 0
    ;;
start) ;;
*)
    log "usage: bash .ci/postgres.sh [start|stop|install]"
    exit 2
    ;;
esac

if ! installed; then
    log "PostgreSQL's server programs (initdb, pg_ctl) are not installed: 'make postgres-deps' \
(as root) installs Debian's postgresql package."
    exit 3
fi

mkdir -p "$ROOT"
chown "$OWNER" "$ROOT"
chmod 700 "$ROOT"

# (Re)initialise when there is no complete cluster or it is of another major version; the
# cluster is disposable. initdb writes PG_VERSION early, so a cluster without the final
# postgresql.auto.conf is one whose initdb was interrupted.
# The major version as PG_VERSION spells it ("15"), from the programs themselves (the Debian
# directory name is not there on other systems).
major="$("$BIN/initdb" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')"
if [[ ! -f "$DATA/PG_VERSION" || ! -f "$DATA/postgresql.auto.conf" ||
    "$(cat "$DATA/PG_VERSION")" != "$major" ]]; then
    log "initialising a PostgreSQL $major cluster in $DATA"
    if ours_running; then as_owner "$BIN/pg_ctl" stop -D "$DATA" -m immediate -w >&2 || true; fi
    rm -rf "$DATA"
    # UTF8 whatever the machine's locale (a bare container's C locale would give SQL_ASCII);
    # passwords over TCP, trust on the private Unix socket for this script's admin steps.
    quietly as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions
fi

if ours_running; then
    log "server already running on 127.0.0.1:$PORT"
else
    # Stale lock files (see ours_running): the data directory's and the Unix socket's.
    rm -f "$DATA/postmaster.pid" "$ROOT/.s.PGSQL.$PORT.lock"
    log "starting the server on 127.0.0.1:$PORT"
    # fsync off: a test server's data only need to survive the process dying, not the machine.
    if ! as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$ROOT/server.log" -w -t 60 -s -o \
        "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$ROOT -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2; then
        log "the server did not start; its log ($ROOT/server.log) ends with:"
        tail -n 20 "$ROOT/server.log" >&2 || true
        log "another program may hold port $PORT: set FOXAGENT_PG_PORT to another one."
        exit 1
    fi
fi

# Wait for connections (a server found running may still be starting up).
ready=0
for _ in $(seq 1 60); do
    if "$BIN/pg_isready" -q -h "$ROOT" -p "$PORT" -U postgres; then ready=1 && break; fi
    sleep 0.5
done
[[ $ready == 1 ]] || { log "the server does not accept connections; see $ROOT/server.log"; exit 1; }

admin() { as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$ROOT" -p "$PORT" -U postgres -d postgres "$@"; }
admin <<SQL
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN;
    END IF;
END \$\$;
ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
SQL
if [[ "$(admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    admin -c "CREATE DATABASE $DATABASE OWNER $ROLE"
fi

echo "$CONNINFO" >"$ROOT/conninfo"
echo "$CONNINFO"
