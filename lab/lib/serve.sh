# shellcheck shell=bash
# The lab's own `os-onboard serve` (issue 16): the REST API that the Horizon
# dashboard (lib/horizon.sh, extras/horizon) talks to.
#
# One replica, started by `lab up` from the lab's OpenStack venv (where
# lib/openstack.sh installs os-onboard with OpenStack's constraints), with
# $LAB_ONBOARD_SERVE_CONFIG plus an override of its own:
#   * its own state store database on the lab's MariaDB (os_onboard_lab):
#     jobs are rows that any replica of the same store claims, so a replica
#     that shared os_onboard_serve with the functional tests' replicas would
#     run (and, killed, resume) their jobs;
#   * its own tooz group (lab-dashboard), for the same reason with hosts.
# It runs with the lab's vSphere password (VSPHERE_PASSWORD: discovery of the
# simulator reads it from the environment) and clouds.yaml (plans and
# applies use the lab-admin cloud). Restarted when its config or the
# installed os-onboard (the venv's stamp) changed.
#
# pidfile $LAB_ONBOARD_DIR/run/serve.pid ("pid starttime"), log
# $LAB_LOG_DIR/onboard-serve.log. `lab/lab env` gives LAB_ONBOARD_URL.
#
# Settings: LAB_ONBOARD_SERVE_PORT (8799).

: "${LAB_ONBOARD_SERVE_PORT:=8799}"
LAB_ONBOARD_SERVE_DB=os_onboard_lab
LAB_ONBOARD_SERVE_OVERRIDE=$LAB_ONBOARD_DIR/lab-serve.conf
LAB_ONBOARD_SERVE_PIDFILE=$LAB_ONBOARD_DIR/run/serve.pid
LAB_ONBOARD_SERVE_LOG=$LAB_LOG_DIR/onboard-serve.log

serve_url() { printf 'http://127.0.0.1:%s' "$LAB_ONBOARD_SERVE_PORT"; }

# serve_pid: the live pid of the lab's serve (its start time must match the pidfile's).
serve_pid() {
    local pid start
    [[ -s $LAB_ONBOARD_SERVE_PIDFILE ]] || return 1
    read -r pid start <"$LAB_ONBOARD_SERVE_PIDFILE" || true
    pid_alive "$pid" || return 1
    [[ -z $start || $(os_starttime "$pid") == "$start" ]] || return 1
    printf '%s' "$pid"
}

serve_healthy() { [[ $(os_http_code "$(serve_url)/v1") == 200 ]]; }

# The override (its own database and tooz group), and the database itself.
serve_render() {
    local db_pw
    db_pw=$(onboard_secret)
    os_sql "CREATE DATABASE IF NOT EXISTS $LAB_ONBOARD_SERVE_DB CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON $LAB_ONBOARD_SERVE_DB.* TO 'onboard'@'127.0.0.1';" >/dev/null ||
        die "serve: cannot create the database $LAB_ONBOARD_SERVE_DB on MariaDB"
    (umask 077 && os_write "$LAB_ONBOARD_SERVE_OVERRIDE") <<CONF
# The lab's dashboard replica (lab/lib/serve.sh): its own store and tooz group.
[DEFAULT]
state_url = mysql+pymysql://onboard:$db_pw@127.0.0.1/$LAB_ONBOARD_SERVE_DB?charset=utf8mb4

[coordination]
group = lab-dashboard
member_id = lab-serve
CONF
}

serve_cmd() {
    SERVE_CMD=("$LAB_OS_VENV/bin/os-onboard" serve --config "$LAB_ONBOARD_SERVE_CONFIG"
        --config "$LAB_ONBOARD_SERVE_OVERRIDE" --bind "127.0.0.1:$LAB_ONBOARD_SERVE_PORT")
}

serve_hash() {
    serve_cmd
    { printf '%s\n' "${SERVE_CMD[@]}"; cat "$LAB_ONBOARD_SERVE_CONFIG" "$LAB_ONBOARD_SERVE_OVERRIDE" \
        "$LAB_OS_VENV/.lab-onboard-stamp" 2>/dev/null; } | sha256sum | cut -c1-16
}

serve_up() {
    local pid hash t0
    mkdir -p "$LAB_ONBOARD_DIR/run"
    serve_render
    hash=$(serve_hash)
    if pid=$(serve_pid); then
        if [[ $(cat "$LAB_ONBOARD_DIR/run/serve.hash" 2>/dev/null) == "$hash" ]] && serve_healthy; then
            log "serve: already running (pid $pid, $(serve_url))"
            return 0
        fi
        log "serve: configuration or os-onboard changed; restarting it"
        serve_down
    fi
    t0=$(lab_now_us)
    serve_cmd
    printf '\n==== %s lab: starting os-onboard serve ====\n' "$(date '+%F %T')" >>"$LAB_ONBOARD_SERVE_LOG"
    # setsid: its own session (down stops the gunicorn master and worker); fds
    # 3-9 closed: not holding the lab's locks.
    env -i PATH="$LAB_OS_VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root LANG=C.UTF-8 \
        PYTHONUNBUFFERED=1 OS_CLIENT_CONFIG_FILE="$LAB_OS_CLOUDS_YAML" \
        VSPHERE_PASSWORD="$(vsphere_password 2>/dev/null || true)" \
        setsid nohup "${SERVE_CMD[@]}" </dev/null >>"$LAB_ONBOARD_SERVE_LOG" 2>&1 \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    printf '%s %s\n' "$pid" "$(os_starttime "$pid")" >"$LAB_ONBOARD_SERVE_PIDFILE"
    printf '%s\n' "$hash" >"$LAB_ONBOARD_DIR/run/serve.hash"
    while ! serve_healthy; do
        pid_alive "$pid" || die "serve: exited; see $LAB_ONBOARD_SERVE_LOG: $(tail -n 3 "$LAB_ONBOARD_SERVE_LOG" | tr '\n' ' ')"
        (($(lab_now_us) - t0 > 60000000)) && die "serve: no answer on $(serve_url)/v1 after 60 s; see $LAB_ONBOARD_SERVE_LOG"
        sleep 0.2
    done
    log "serve: $(serve_url) answers after $(lab_elapsed "$t0")s (pid $pid, log $LAB_ONBOARD_SERVE_LOG)"
}

serve_down() {
    local pid left
    if pid=$(serve_pid); then
        stop_pid "os-onboard serve" "$pid" 20
        left=$(os_session_pids "$pid" | paste -sd' ')
        # shellcheck disable=SC2086 # a list of pids
        [[ -z $left ]] || kill -KILL $left 2>/dev/null || true
    fi
    rm -f "$LAB_ONBOARD_SERVE_PIDFILE" "$LAB_ONBOARD_DIR/run/serve.hash"
}

# One status block; returns 1 when serve is not running or not answering.
serve_status() {
    local pid
    echo "os-onboard serve ($(serve_url)):"
    if ! pid=$(serve_pid); then
        printf '  %-9s NOT RUNNING     log %s\n' serve "$LAB_ONBOARD_SERVE_LOG"
        return 1
    fi
    if serve_healthy; then
        printf '  %-9s pid %-7s alive   /v1 answers   log %s\n' serve "$pid" "$LAB_ONBOARD_SERVE_LOG"
    else
        printf '  %-9s pid %-7s alive   /v1 NOT ANSWERING   log %s\n' serve "$pid" "$LAB_ONBOARD_SERVE_LOG"
        return 1
    fi
}

serve_env() {
    printf '%sLAB_ONBOARD_URL=%s\n' "${1:-}" "$(shell_quote "$(serve_url)")"
}
