#!/usr/bin/env bash
# Manage a throwaway PostgreSQL server for the persistq test suite.
#
#   scripts/postgres.sh start DIR   # (re)create DIR, start a fresh server, write DIR/env
#   scripts/postgres.sh stop DIR    # stop the server started in DIR and remove DIR
#
# After `start`, `DIR/env` is shell-sourceable and defines:
#   PERSISTQ_PG_HOST, PERSISTQ_PG_PORT, PERSISTQ_PG_USER, PERSISTQ_PG_PASSWORD,
#   PERSISTQ_PG_DATABASE, PERSISTQ_PG_PIDFILE, PERSISTQ_PG_DATADIR,
#   PERSISTQ_PG_SOCKETDIR, PERSISTQ_PG_DSN, PERSISTQ_PG_START_CMD
#
# PERSISTQ_PG_START_CMD is DIR/restart.sh: it starts the server again with
# exactly the same settings (e.g. after a fault test killed it), rewrites
# DIR/server.pid and waits until the server accepts connections (exit 0) or
# fails (exit 1). It is a no-op if the server is already up.
#
# PostgreSQL refuses to run as root: when this script runs as root, the server
# runs as the `postgres` user (DIR is chowned to it). It listens on 127.0.0.1
# only, on a free port, with fsync on; the test account logs in with a
# password (scram-sha-256). Any failure exits non-zero: a skipped PostgreSQL
# test is a failure.
set -euo pipefail

DB_NAME=persistq_test
DB_USER=persistq
DB_PASSWORD=persistq-test-pw
PG_USER=postgres           # the OS account the server runs as, when started by root
MARKER=.persistq-postgres  # marks a directory as ours, so `rm -rf` is safe

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { printf 'postgres.sh: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: scripts/postgres.sh start DIR
       scripts/postgres.sh stop DIR
EOF
    exit 2
}

# The directory holding initdb, pg_ctl and postgres: PERSISTQ_PG_BINDIR, the
# newest /usr/lib/postgresql/*/bin, or PATH.
find_bindir() {
    local d
    if [[ -n ${PERSISTQ_PG_BINDIR:-} ]]; then
        [[ -x $PERSISTQ_PG_BINDIR/postgres ]] || die "PERSISTQ_PG_BINDIR=$PERSISTQ_PG_BINDIR has no postgres binary"
        printf '%s\n' "$PERSISTQ_PG_BINDIR"
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    if command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v postgres)"
        return 0
    fi
    return 1
}

# find_bindir, installing Debian's postgresql (15 on bookworm) with apt-get when none is found.
find_or_install_bindir() {
    if find_bindir; then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and we are not root; install it (apt-get install postgresql) and retry"
    log "PostgreSQL not found; installing Debian's postgresql with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } \
        || die "apt-get could not install postgresql"
    find_bindir || die "PostgreSQL is still not installed (no /usr/lib/postgresql/*/bin/postgres)"
}

# Run a command as the server's OS account (root may not run PostgreSQL).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

# True if PID is alive and is a PostgreSQL server process (guards against PID reuse).
is_server_pid() {
    local pid=$1 comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $comm == postgres || $comm == postmaster ]]
}

# The postmaster's PID recorded in DIR (server.pid, else data/postmaster.pid), if it runs.
recorded_pid() {
    local dir=$1 pid f
    for f in "$dir/server.pid" "$dir/data/postmaster.pid"; do
        if [[ -f $f ]]; then
            pid=$( { head -n 1 "$f" | tr -dc '0-9'; } 2>/dev/null || true)
            if is_server_pid "$pid"; then
                printf '%s\n' "$pid"
                return 0
            fi
        fi
    done
    return 0
}

# Stop the server started in DIR, by PID: fast shutdown (SIGINT: sessions are
# ended, the checkpoint written), then SIGQUIT, then SIGKILL.
stop_server() {
    local dir=$1 pid i sig
    pid=$(recorded_pid "$dir")
    [[ -n $pid ]] || return 0
    log "stopping postgres (pid $pid)"
    for sig in INT QUIT KILL; do
        kill -"$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            is_server_pid "$pid" || return 0
            sleep 0.1
        done
        log "postgres (pid $pid) still runs 20 s after SIG$sig"
    done
    die "could not stop postgres (pid $pid)"
}

# Refuse to rm -rf a directory we did not create.
check_dir_is_ours() {
    local dir=$1
    [[ -n $dir && $dir != / ]] || die "refusing to use directory '$dir'"
    if [[ -d $dir && ! -e $dir/$MARKER ]] && [[ -n $(ls -A "$dir" 2>/dev/null) ]]; then
        die "$dir exists, is not empty and was not created by this script; refusing to touch it"
    fi
    if [[ -e $dir && ! -d $dir ]]; then
        die "$dir exists and is not a directory"
    fi
}

pick_port() {
    local py port
    for py in python3 /usr/bin/python3 python; do
        if port=$("$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) && [[ $port =~ ^[0-9]+$ ]]; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    # Fallback without python: first port from 54321 nobody listens on.
    for ((port = 54321; port < 54421; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "could not find a free TCP port"
}

# Write DIR/restart.sh, which starts the server with fixed settings, records
# the postmaster's PID in DIR/server.pid and waits until it accepts connections.
write_restart_script() {
    local dir=$1 port=$2 bindir=$3 runas=""
    if [[ $(id -u) -eq 0 ]]; then
        runas=$PG_USER
    fi
    {
        printf '#!/usr/bin/env bash\n'
        printf '# Generated by scripts/postgres.sh: (re)start the persistq test PostgreSQL server.\n'
        printf 'set -euo pipefail\n'
        printf 'DIR=%q\n' "$dir"
        printf 'BINDIR=%q\n' "$bindir"
        printf 'PORT=%q\n' "$port"
        printf 'RUNAS=%q\n' "$runas"
        printf 'TIMEOUT=${PERSISTQ_PG_START_TIMEOUT:-60}\n'
        cat <<'EOF'
as_pg() { if [[ -n $RUNAS && $(id -u) -eq 0 ]]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi; }
ready() { "$BINDIR/pg_isready" -q -h "$DIR" -p "$PORT" -t 2 >/dev/null 2>&1; }
alive() {
    local pid=$1 comm
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $comm == postgres || $comm == postmaster ]]
}
old=$( { head -n 1 "$DIR/server.pid" | tr -dc '0-9'; } 2>/dev/null || true)
if alive "$old"; then
    if ready; then
        exit 0  # already running
    fi
    # A killed or stopping server may still be exiting; give it a moment.
    for ((i = 0; i < 200; i++)); do alive "$old" || break; sleep 0.1; done
    alive "$old" && { echo "restart.sh: postgres pid $old is alive but not accepting connections" >&2; exit 1; }
fi
[[ -e $DIR/server.log ]] || as_pg touch "$DIR/server.log"  # written by the server's account
log_offset=$(stat -c %s "$DIR/server.log")
deadline=$((SECONDS + TIMEOUT))
# After a SIGKILL of the postmaster its backends exit on their own within a
# moment; until then the new postmaster refuses to start (their shared memory
# is still attached), so starting is retried until the deadline.
while true; do
    if as_pg "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t "$TIMEOUT" -s \
        -o "-c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$DIR'" start \
        >>"$DIR/server.out" 2>&1; then
        break
    fi
    if ((SECONDS >= deadline)) || ! tail -c +"$((log_offset + 1))" "$DIR/server.log" |
        grep -qE 'pre-existing shared memory block|lock file .* already exists|could not bind'; then
        echo "restart.sh: postgres did not start; server log:" >&2
        tail -c +"$((log_offset + 1))" "$DIR/server.log" | tail -n 30 >&2
        exit 1
    fi
    sleep 0.2
done
pid=$( { head -n 1 "$DIR/data/postmaster.pid" | tr -dc '0-9'; } 2>/dev/null || true)
alive "$pid" || { echo "restart.sh: postgres started but data/postmaster.pid names no server" >&2; exit 1; }
echo "$pid" >"$DIR/server.pid"
while ! ready; do
    if ! alive "$pid"; then
        echo "restart.sh: postgres exited during startup; server log:" >&2
        tail -c +"$((log_offset + 1))" "$DIR/server.log" | tail -n 30 >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "restart.sh: postgres did not accept connections within ${TIMEOUT}s" >&2
        exit 1
    fi
    sleep 0.1
done
EOF
    } >"$dir/restart.sh"
    chmod 755 "$dir/restart.sh"
}

cmd_start() {
    local dir=$1 bindir port attempt ok=0 pwfile
    bindir=$(find_or_install_bindir)
    if [[ $(id -u) -eq 0 ]]; then
        id "$PG_USER" >/dev/null 2>&1 || die "PostgreSQL refuses to run as root and there is no '$PG_USER' user"
    fi
    check_dir_is_ours "$dir"
    if [[ -d $dir ]]; then
        stop_server "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    touch "$dir/$MARKER"
    rm -rf "$dir/data"
    rm -f "$dir/server.pid" "$dir/server.log" "$dir/server.out" "$dir/initdb.log" "$dir/env" \
        "$dir/restart.sh" "$dir"/.s.PGSQL.*
    if [[ $(id -u) -eq 0 ]]; then
        chown "$PG_USER": "$dir"
        as_pg test -w "$dir" || die "user $PG_USER cannot write to $dir (is a parent directory closed to it?)"
    fi
    chmod 755 "$dir"

    log "initialising $dir/data"
    pwfile=$(mktemp "$dir/.pw.XXXXXX")
    # The superuser gets a random password nobody needs: it logs in over the
    # private socket directory only (trust), never over TCP.
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile"
    [[ $(id -u) -eq 0 ]] && chown "$PG_USER": "$pwfile"
    if ! as_pg "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1; then
        rm -f "$pwfile"
        tail -n 30 "$dir/initdb.log" >&2
        die "initdb failed (log: $dir/initdb.log)"
    fi
    rm -f "$pwfile"
    # Settings the tests rely on: durable commits (fsync, synchronous_commit
    # are the defaults, written down so nobody's override changes them),
    # enough connections for several processes with pools and listeners.
    cat >>"$dir/data/postgresql.conf" <<'EOF'

# --- persistq test server (scripts/postgres.sh) ---
fsync = on
synchronous_commit = on
max_connections = 300
shared_buffers = 64MB
log_min_messages = warning
log_connections = off
EOF

    for attempt in 1 2 3; do
        port=$(pick_port)
        write_restart_script "$dir" "$port" "$bindir"
        log "starting postgres on 127.0.0.1:$port"
        if "$dir/restart.sh"; then
            ok=1
            break
        fi
        if ! grep -qiE 'could not bind|address already in use' "$dir/server.log" 2>/dev/null; then
            break
        fi
        log "port $port was taken; retrying with another port"
    done
    ((ok)) || die "postgres failed to start (log: $dir/server.log)"

    log "creating database $DB_NAME and user $DB_USER"
    if ! as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
        >>"$dir/server.out" 2>&1 <<EOF; then
CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD' CREATEDB;
CREATE DATABASE $DB_NAME OWNER $DB_USER;
EOF
        tail -n 20 "$dir/server.out" >&2
        die "could not create the database and user"
    fi

    {
        printf 'PERSISTQ_PG_HOST=127.0.0.1\n'
        printf 'PERSISTQ_PG_PORT=%s\n' "$port"
        printf 'PERSISTQ_PG_USER=%s\n' "$DB_USER"
        printf 'PERSISTQ_PG_PASSWORD=%s\n' "$DB_PASSWORD"
        printf 'PERSISTQ_PG_DATABASE=%s\n' "$DB_NAME"
        printf 'PERSISTQ_PG_PIDFILE=%q\n' "$dir/server.pid"
        printf 'PERSISTQ_PG_DATADIR=%q\n' "$dir/data"
        printf 'PERSISTQ_PG_SOCKETDIR=%q\n' "$dir"
        printf 'PERSISTQ_PG_DSN=%q\n' "postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$port/$DB_NAME"
        printf 'PERSISTQ_PG_START_CMD=%q\n' "$dir/restart.sh"
    } >"$dir/env"
    log "ready: 127.0.0.1:$port (pid $(cat "$dir/server.pid")); env in $dir/env"
}

cmd_stop() {
    local dir=$1
    [[ -n $dir && $dir != / ]] || die "refusing to use directory '$dir'"
    [[ -e $dir ]] || return 0
    check_dir_is_ours "$dir"
    stop_server "$dir"
    rm -rf -- "$dir"
}

main() {
    [[ $# -eq 2 ]] || usage
    case $1 in
        start) cmd_start "$2" ;;
        stop) cmd_stop "$2" ;;
        *) usage ;;
    esac
}

main "$@"
