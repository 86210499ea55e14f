#!/usr/bin/env bash
# Manage a throwaway MariaDB server for the persistq test suite.
#
#   scripts/mariadb.sh start DIR   # (re)create DIR, start a fresh server, write DIR/env
#   scripts/mariadb.sh stop DIR    # stop the server started in DIR and remove DIR
#
# After `start`, `DIR/env` is shell-sourceable and defines:
#   PERSISTQ_MYSQL_HOST, PERSISTQ_MYSQL_PORT, PERSISTQ_MYSQL_USER,
#   PERSISTQ_MYSQL_PASSWORD, PERSISTQ_MYSQL_DATABASE, PERSISTQ_MYSQL_PIDFILE,
#   PERSISTQ_MYSQL_DATADIR, PERSISTQ_MYSQL_SOCKET, PERSISTQ_MYSQL_START_CMD
#
# PERSISTQ_MYSQL_START_CMD is DIR/restart.sh: it starts the server again with
# exactly the same arguments (e.g. after a fault test SIGKILLed it), rewrites
# DIR/server.pid and waits until the server answers (exit 0) or fails (exit 1).
# It is a no-op if the server is already up.
#
# If mariadbd is missing, Debian's mariadb-server is installed with apt-get
# (needs root). Any failure exits non-zero: a skipped MySQL test is a failure.
set -euo pipefail

DB_NAME=persistq_test
DB_USER=persistq
DB_PASSWORD=persistq-test-pw
MARKER=.persistq-mariadb   # marks a directory as ours, so `rm -rf` is safe

log() { printf 'mariadb.sh: %s\n' "$*" >&2; }
die() { printf 'mariadb.sh: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: scripts/mariadb.sh start DIR
       scripts/mariadb.sh stop DIR
EOF
    exit 2
}

# Locate a binary on PATH or in the usual Debian locations.
find_bin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        if [[ -x /usr/sbin/$name ]]; then
            printf '%s\n' "/usr/sbin/$name"
            return 0
        fi
        if [[ -x /usr/bin/$name ]]; then
            printf '%s\n' "/usr/bin/$name"
            return 0
        fi
    done
    return 1
}

have_all_bins() {
    find_bin mariadbd mysqld >/dev/null &&
        find_bin mariadb-install-db mysql_install_db >/dev/null &&
        find_bin mariadb-admin mysqladmin >/dev/null &&
        find_bin mariadb mysql >/dev/null
}

ensure_installed() {
    if have_all_bins; then
        return 0
    fi
    log "mariadbd not found; installing Debian's mariadb-server with apt-get"
    if [[ $(id -u) -ne 0 ]]; then
        die "mariadb-server is not installed and we are not root; install it (apt-get install mariadb-server) and retry"
    fi
    command -v apt-get >/dev/null 2>&1 || die "mariadb-server is not installed and apt-get is unavailable"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq >&2; then
        die "apt-get update failed; cannot install mariadb-server"
    fi
    if ! apt-get install -y -qq --no-install-recommends mariadb-server >&2; then
        die "apt-get install mariadb-server failed"
    fi
    have_all_bins || die "mariadb-server was installed but mariadbd/mariadb-install-db/mariadb-admin/mariadb are still missing"
    log "installed $("$(find_bin mariadbd mysqld)" --version 2>/dev/null || echo mariadb-server)"
}

# True if PID is alive and is a MariaDB server process (guards against PID reuse).
is_server_pid() {
    local pid=$1 comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $comm == mariadbd || $comm == mysqld ]]
}

# Stop the server whose PID is recorded in DIR (server.pid, else mysqld.pid).
stop_server() {
    local dir=$1 pid="" f i
    for f in "$dir/server.pid" "$dir/mysqld.pid"; do
        if [[ -f $f ]]; then
            pid=$( { tr -dc '0-9' <"$f"; } 2>/dev/null || true)
            if is_server_pid "$pid"; then
                break
            fi
            pid=""
        fi
    done
    [[ -n $pid ]] || return 0
    log "stopping mariadbd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        is_server_pid "$pid" || return 0
        sleep 0.1
    done
    log "mariadbd (pid $pid) did not exit after 20 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        is_server_pid "$pid" || return 0
        sleep 0.1
    done
    die "could not kill mariadbd (pid $pid)"
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
    # Fallback without python: first port from 33061 nobody listens on.
    for ((port = 33061; port < 33161; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "could not find a free TCP port"
}

# Write DIR/restart.sh, which starts mariadbd in the background with fixed
# arguments, records its PID in DIR/server.pid and waits until it answers.
write_restart_script() {
    local dir=$1 port=$2 mariadbd admin args q
    mariadbd=$(find_bin mariadbd mysqld)
    admin=$(find_bin mariadb-admin mysqladmin)
    args=(
        "$mariadbd" --no-defaults --user=root
        --bind-address=127.0.0.1 --port="$port"
        --datadir="$dir/data" --socket="$dir/mysqld.sock"
        --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log"
        --skip-log-bin --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0
        --skip-name-resolve --max-connections=500
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
    )
    q=$(printf '%q ' "${args[@]}")
    {
        printf '#!/usr/bin/env bash\n'
        printf '# Generated by scripts/mariadb.sh: (re)start the persistq test MariaDB server.\n'
        printf 'set -euo pipefail\n'
        printf 'DIR=%q\n' "$dir"
        printf 'ADMIN=%q\n' "$admin"
        printf 'TIMEOUT=${PERSISTQ_MYSQL_START_TIMEOUT:-60}\n'
        cat <<'EOF'
ping() { "$ADMIN" --no-defaults --user=root --socket="$DIR/mysqld.sock" --connect-timeout=2 ping >/dev/null 2>&1; }
alive() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    local comm; comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ $comm == mariadbd || $comm == mysqld ]]
}
old=$( { tr -dc '0-9' <"$DIR/server.pid"; } 2>/dev/null || true)
if alive "$old"; then
    if ping; then
        exit 0  # already running
    fi
    # A killed server may still be exiting; give it a moment.
    for ((i = 0; i < 100; i++)); do alive "$old" || break; sleep 0.1; done
    alive "$old" && { echo "restart.sh: mariadbd pid $old is alive but not answering" >&2; exit 1; }
fi
rm -f "$DIR/mysqld.sock" "$DIR/mysqld.sock.lock" "$DIR/mysqld.pid"
: >>"$DIR/error.log"
log_offset=$(stat -c %s "$DIR/error.log")
EOF
        printf 'setsid nohup %s>>"$DIR/server.out" 2>&1 </dev/null &\n' "$q"
        cat <<'EOF'
pid=$!
echo "$pid" >"$DIR/server.pid"
deadline=$((SECONDS + TIMEOUT))
while ! ping; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "restart.sh: mariadbd exited during startup; error log:" >&2
        tail -c +"$((log_offset + 1))" "$DIR/error.log" | tail -n 30 >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "restart.sh: mariadbd did not answer within ${TIMEOUT}s; error log:" >&2
        tail -c +"$((log_offset + 1))" "$DIR/error.log" | tail -n 30 >&2
        kill -KILL "$pid" 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
EOF
    } >"$dir/restart.sh"
    chmod +x "$dir/restart.sh"
}

cmd_start() {
    local dir=$1 install_db client port attempt ok=0
    ensure_installed
    check_dir_is_ours "$dir"
    if [[ -d $dir ]]; then
        stop_server "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    touch "$dir/$MARKER"
    rm -rf "$dir/data"
    rm -f "$dir/mysqld.sock" "$dir/mysqld.sock.lock" "$dir/mysqld.pid" "$dir/server.pid" \
        "$dir/error.log" "$dir/server.out" "$dir/install-db.log" "$dir/env" "$dir/restart.sh"

    install_db=$(find_bin mariadb-install-db mysql_install_db)
    client=$(find_bin mariadb mysql)

    log "initialising datadir $dir/data"
    if ! "$install_db" --no-defaults --user=root --datadir="$dir/data" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install-db.log" 2>&1; then
        tail -n 30 "$dir/install-db.log" >&2
        die "mariadb-install-db failed (log: $dir/install-db.log)"
    fi

    for attempt in 1 2 3; do
        port=$(pick_port)
        write_restart_script "$dir" "$port"
        log "starting mariadbd on 127.0.0.1:$port"
        if "$dir/restart.sh"; then
            ok=1
            break
        fi
        # Retry with another port only if the port was taken under our feet.
        if ! grep -qiE 'bind on tcp/ip port|address already in use' "$dir/error.log" 2>/dev/null; then
            break
        fi
        log "port $port was taken; retrying with another port"
        : >"$dir/error.log"
    done
    ((ok)) || die "mariadbd failed to start (error log: $dir/error.log)"

    log "creating database $DB_NAME and user $DB_USER"
    "$client" --no-defaults --user=root --socket="$dir/mysqld.sock" <<EOF
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));
DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1', '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON \`persistq\\_%\`.* TO '$DB_USER'@'127.0.0.1', '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF

    {
        printf 'PERSISTQ_MYSQL_HOST=127.0.0.1\n'
        printf 'PERSISTQ_MYSQL_PORT=%s\n' "$port"
        printf 'PERSISTQ_MYSQL_USER=%s\n' "$DB_USER"
        printf 'PERSISTQ_MYSQL_PASSWORD=%s\n' "$DB_PASSWORD"
        printf 'PERSISTQ_MYSQL_DATABASE=%s\n' "$DB_NAME"
        printf 'PERSISTQ_MYSQL_PIDFILE=%q\n' "$dir/server.pid"
        printf 'PERSISTQ_MYSQL_DATADIR=%q\n' "$dir/data"
        printf 'PERSISTQ_MYSQL_SOCKET=%q\n' "$dir/mysqld.sock"
        printf 'PERSISTQ_MYSQL_START_CMD=%q\n' "$dir/restart.sh"
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
