# shellcheck shell=bash
# Shared settings and helpers of the os-onboard lab. Sourced by lab/lab.
#
# Every path the lab writes lives under LAB_STATE_DIR (outside the repo, so
# clean clones reuse the guest-image cache). Layout:
#   cache/            downloaded kernel packages, extracted vmlinux + modules
#   guest/            vmlinux + initramfs used by the lab guests
#   images/           guest disk images (recreated by `up` after `down`)
#   hosts/a/{etc,run} libvirtd/virtlogd config copies and pidfiles of host A
#   run/              lab bookkeeping (defined guests, console offsets)
#   log/              every lab log: lab.log, host-a-*.log, apt.log, console/

: "${LAB_STATE_DIR:=/var/lib/os-onboard-lab}"
LAB_LOG_DIR=$LAB_STATE_DIR/log
LAB_CONSOLE_DIR=$LAB_LOG_DIR/console
LAB_RUN_DIR=$LAB_STATE_DIR/run
LAB_CACHE_DIR=$LAB_STATE_DIR/cache
LAB_GUEST_DIR=$LAB_STATE_DIR/guest
LAB_IMAGE_DIR=$LAB_STATE_DIR/images

: "${LAB_NETWORK:=onboard-lab}"
: "${LAB_BRIDGE:=virbr-onb}"
# First three octets of the isolated /24 (checked against the host's routes).
: "${LAB_NET_PREFIX:=192.168.150}"
: "${LAB_HOST_A_URI:=qemu:///system}"
: "${LAB_HOST_A_TCP_PORT:=16509}"
if [[ $LAB_HOST_A_TCP_PORT == 16509 ]]; then
    : "${LAB_HOST_A_TCP_URI:=qemu+tcp://127.0.0.1/system}"
else
    : "${LAB_HOST_A_TCP_URI:=qemu+tcp://127.0.0.1:$LAB_HOST_A_TCP_PORT/system}"
fi
# Seconds `up` waits for every running guest's lease(s) and heartbeat.
: "${LAB_BOOT_TIMEOUT:=180}"
: "${LAB_GUESTS_CONF:=$LAB_DIR/guests.conf}"

LAB_T0=${EPOCHREALTIME/./}

# Microseconds since the epoch.
lab_now_us() { printf '%s' "${EPOCHREALTIME/./}"; }

# Seconds (one decimal) since $1 (microseconds since the epoch).
lab_since() {
    local d=$(($(lab_now_us) - $1))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# Seconds since $1 (microseconds), by default since the start of this command.
# shellcheck disable=SC2120 # the argument is optional
lab_elapsed() { lab_since "${1:-$LAB_T0}"; }

log() {
    local line
    line=$(printf '[lab %6ss] %s' "$(lab_elapsed)" "$*")
    printf '%s\n' "$line"
    if [[ -d $LAB_LOG_DIR ]]; then
        printf '%s %s\n' "$(date '+%F %T')" "$line" >>"$LAB_LOG_DIR/lab.log" || true
    fi
}

warn() { log "WARNING: $*" >&2; }

die() {
    log "ERROR: $*" >&2
    exit 1
}

need_root() {
    [[ $(id -u) == 0 ]] || die "lab $1 must run as root (it starts libvirtd and creates bridges)"
}

lab_dirs() {
    mkdir -p "$LAB_STATE_DIR" "$LAB_LOG_DIR" "$LAB_CONSOLE_DIR" "$LAB_RUN_DIR" \
        "$LAB_CACHE_DIR" "$LAB_GUEST_DIR" "$LAB_IMAGE_DIR"
    # QEMU runs as libvirt-qemu and must traverse to the images and kernel.
    chmod 0755 "$LAB_STATE_DIR" "$LAB_GUEST_DIR" "$LAB_IMAGE_DIR"
}

# Serialise up/down (and anything else that mutates the lab).
lab_lock() {
    mkdir -p "$LAB_STATE_DIR"
    exec 9>"$LAB_STATE_DIR/lock"
    flock -n 9 && return 0
    log "waiting for $LAB_STATE_DIR/lock (another lab command is running)"
    flock -w 900 9 || die "another 'lab' command holds $LAB_STATE_DIR/lock for 15 min"
}

virsh_a() { virsh -q -c "$LAB_HOST_A_URI" "$@"; }

# Fill a template: lab_template FILE KEY=VALUE... ; @KEY@ becomes VALUE.
lab_template() {
    local text kv
    text=$(<"$1")
    shift
    for kv in "$@"; do
        text=${text//@${kv%%=*}@/${kv#*=}}
    done
    printf '%s\n' "$text"
}

# --- processes -------------------------------------------------------------

# pid_alive PID: running and not a zombie.
pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# pidfile_pid FILE: print the pid recorded in FILE if that process is alive.
pidfile_pid() {
    local pid=
    [[ -s $1 ]] || return 1
    read -r pid <"$1" || true
    pid_alive "$pid" || return 1
    printf '%s' "$pid"
}

proc_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

# daemon_pid FILE COMM: print the pid recorded in FILE if that process is alive
# and is COMM. A live pid that is another program means the daemon died with
# the machine and a restart handed its pid to someone else: the daemon counts
# as not running (callers then replace the stale pidfile; that process is
# never signalled).
daemon_pid() {
    local pid
    pid=$(pidfile_pid "$1") || return 1
    [[ $(proc_comm "$pid") == "$2" ]] || return 1
    printf '%s' "$pid"
}

# stop_pid LABEL PID [TIMEOUT]: SIGTERM, wait, then SIGKILL.
stop_pid() {
    local label=$1 pid=$2 timeout=${3:-15} i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || { log "stopped $label (pid $pid)"; return 0; }
        sleep 0.1
    done
    warn "$label (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    die "$label (pid $pid) does not die"
}

# PIDs of processes whose comm is $1.
pids_by_comm() {
    local d
    for d in /proc/[0-9]*; do
        [[ $(cat "$d/comm" 2>/dev/null) == "$1" ]] && pid_alive "${d#/proc/}" && printf '%s\n' "${d#/proc/}"
    done
    return 0
}

# Every pid recorded in a lab pidfile (all hosts).
lab_known_pids() {
    local f pid
    for f in "$LAB_STATE_DIR"/hosts/*/run/*.pid; do
        [[ -e $f ]] || continue
        pid=$(pidfile_pid "$f") && printf '%s\n' "$pid"
    done
    return 0
}

# Quote a value for `eval`: bare when plainly safe, else double quotes.
shell_quote() {
    local v=$1
    if [[ $v =~ ^[A-Za-z0-9_./:@%+=,-]+$ ]]; then
        printf '%s' "$v"
        return
    fi
    v=${v//\\/\\\\}
    v=${v//\"/\\\"}
    v=${v//\$/\\\$}
    v=${v//\`/\\\`}
    printf '"%s"' "$v"
}
