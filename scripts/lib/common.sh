# shellcheck shell=bash
# Shared helpers for scripts/up and scripts/down: messages, the state
# directory, starting and stopping background processes by pid file, and
# waiting for ports with deadlines.
#
# State layout (one directory, default .state/local under the repository):
#   .meridian-state   marker: scripts/down --purge only deletes a directory holding it
#   .lock             flock so up and down never run at the same time
#   started           names of processes started, in order (stopped in reverse)
#   pids/NAME.pid     "PID EXECUTABLE" of each process
#   logs/NAME.log     its stdout and stderr
#   conf/             rendered configuration files
#   data/             data directories (JetStream stores...)

MR_ROOT=${MR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

mr_info() { printf '%s\n' "$*"; }
mr_warn() { printf 'warning: %s\n' "$*" >&2; }
mr_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# mr_state_init DIR: create the layout and take the lock (fd 9) or fail at once.
mr_state_init() {
    MR_STATE=$1
    mkdir -p "$MR_STATE"/{pids,logs,conf,data}
    touch "$MR_STATE/.meridian-state" "$MR_STATE/started"
    exec 9>"$MR_STATE/.lock"
    flock -n 9 || mr_die "another scripts/up or scripts/down is running on $MR_STATE"
}

# mr_find_bin NAME: a built binary from $MERIDIAN_BUILD (default build/, any
# subdirectory: regions/, relay/, ...), else one on PATH.
mr_find_bin() {
    local name=$1 build=${MERIDIAN_BUILD:-$MR_ROOT/build} f
    for f in "$build/$name" "$build"/*/"$name" "$build"/*/*/"$name"; do
        if [[ -f $f && -x $f ]]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    command -v "$name" 2>/dev/null || return 1
}

# mr_pid_of NAME: the pid of a process this state started and that is still running.
mr_pid_of() {
    local f=$MR_STATE/pids/$1.pid pid exe
    [[ -f $f ]] || return 1
    read -r pid exe <"$f" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A recycled pid belongs to some other program: never signal it. A
    # binary rebuilt while it runs shows as "EXE (deleted)": still ours.
    local running
    running=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ $running == "$exe" || $running == "$exe (deleted)" ]] || return 1
    printf '%s\n' "$pid"
}

# mr_running: names of processes of this state that are still alive.
mr_running() {
    local f name
    for f in "$MR_STATE"/pids/*.pid; do
        [[ -e $f ]] || continue
        name=$(basename "$f" .pid)
        mr_pid_of "$name" >/dev/null && printf '%s\n' "$name"
    done
    return 0
}

# mr_spawn NAME CMD...: start CMD in its own session, logs to logs/NAME.log.
mr_spawn() {
    local name=$1
    shift
    local exe log=$MR_STATE/logs/$name.log
    # MR_SPAWN_EXE names the program that ends up running when CMD execs
    # another one (setpriv ... postgres), so mr_pid_of recognises it.
    exe=$(readlink -f "${MR_SPAWN_EXE:-$(command -v "$1")}")
    printf '\n=== %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
    # The lock descriptor must not outlive this script in the daemons.
    setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
    local pid=$! i
    printf '%s %s\n' "$pid" "$exe" >"$MR_STATE/pids/$name.pid"
    printf '%s\n' "$name" >>"$MR_STATE/started"
    # Until the forked shell has exec'd setsid and then the program, the pid
    # runs some other executable and mr_pid_of would call it dead: wait
    # (bounded) for the exec, or for an early exit.
    for ((i = 0; i < 100; i++)); do
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.02
    done
}

# mr_stop_signal NAME SIGNAL: stop NAME with SIGNAL instead of SIGTERM (for
# example postgres, whose SIGTERM waits for every client to disconnect).
mr_stop_signal() {
    printf '%s\n' "$2" >"$MR_STATE/pids/$1.sig"
}

# mr_stop NAME [TIMEOUT_S]: SIGTERM (or its mr_stop_signal), then SIGKILL after the timeout.
mr_stop() {
    local name=$1 timeout=${2:-10} pid i sig=TERM
    [[ -s $MR_STATE/pids/$name.sig ]] && read -r sig <"$MR_STATE/pids/$name.sig"
    if pid=$(mr_pid_of "$name"); then
        kill -"$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            mr_warn "$name (pid $pid) did not stop in ${timeout}s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$MR_STATE/pids/$name.pid" "$MR_STATE/pids/$name.sig"
}

# mr_stop_all: stop every process of this state, newest first.
mr_stop_all() {
    local names name
    mapfile -t names < <(tac "$MR_STATE/started" 2>/dev/null; mr_running)
    for name in "${names[@]}"; do
        [[ -n $name ]] && mr_stop "$name"
    done
    : >"$MR_STATE/started"
}

# mr_port_busy HOST PORT: true when something listens on HOST:PORT (or on a wildcard).
mr_port_busy() {
    local host=$1 port=$2
    [[ $host == *:* ]] && host="[$host]"
    ss -Hltn 2>/dev/null | awk -v a="$host:$port" -v p=":$port" '
        $4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { found = 1 }
        END { exit found ? 0 : 1 }'
}

# mr_listens PID HOST PORT: true when process PID itself listens on HOST:PORT
# (or on a wildcard address with that port).
mr_listens() {
    local pid=$1 host=$2 port=$3
    [[ $host == *:* ]] && host="[$host]"
    ss -Hltnp 2>/dev/null | awk -v a="$host:$port" -v p=":$port" -v want="pid=$pid," '
        ($4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p) && index($0, want) { found = 1 }
        END { exit found ? 0 : 1 }'
}

# mr_wait_port NAME HOST PORT [TIMEOUT_S]: poll until process NAME listens on
# HOST:PORT. A successful connect is not enough: a sibling bound to the
# wildcard address would answer for a process that died.
mr_wait_port() {
    local name=$1 host=$2 port=$3 timeout=${4:-20} i pid
    for ((i = 0; i < timeout * 10; i++)); do
        pid=$(mr_pid_of "$name") || {
            mr_warn "$name exited; last lines of $MR_STATE/logs/$name.log:"
            tail -n 20 "$MR_STATE/logs/$name.log" >&2
            return 1
        }
        mr_listens "$pid" "$host" "$port" && return 0
        sleep 0.1
    done
    mr_warn "$name did not listen on $host:$port within ${timeout}s (see $MR_STATE/logs/$name.log)"
    return 1
}

# mr_http_get HOST PORT PATH: body of a plain HTTP/1.0 GET, without curl.
mr_http_get() {
    local host=$1 port=$2 path=$3 resp
    resp=$(
        exec 3<>"/dev/tcp/$host/$port" || exit 1
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$host" >&3
        timeout 5 cat <&3
    ) || return 1
    printf '%s\n' "${resp#*$'\r\n\r\n'}"
}

# mr_http_status HOST PORT PATH: the HTTP status of a GET (000 when nothing answers).
mr_http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1:$2$3" 2>/dev/null || true
}

# mr_wait_ready NAME HOST PORT [TIMEOUT_S]: poll GET /readyz on an admin
# address until it answers 200, while process NAME is alive.
mr_wait_ready() {
    local name=$1 host=$2 port=$3 timeout=${4:-30} i
    for ((i = 0; i < timeout * 5; i++)); do
        [[ $(mr_http_status "$host" "$port" /readyz) == 200 ]] && return 0
        mr_pid_of "$name" >/dev/null || {
            mr_warn "$name exited; last lines of $MR_STATE/logs/$name.log:"
            tail -n 20 "$MR_STATE/logs/$name.log" >&2
            return 1
        }
        sleep 0.2
    done
    mr_warn "$name: http://$host:$port/readyz not 200 within ${timeout}s (see $MR_STATE/logs/$name.log)"
    return 1
}
