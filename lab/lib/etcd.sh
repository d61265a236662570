# shellcheck shell=bash
# The lab's etcd (Debian's etcd-server), the coordination backend of
# `os-onboard serve` replicas (tooz, issue 15), and the service's config file.
#
# One member on 127.0.0.1 (client LAB_ETCD_PORT, peer LAB_ETCD_PEER_PORT),
# data under $LAB_STATE_DIR/etcd/data, pidfile $LAB_STATE_DIR/etcd/run/etcd.pid,
# log $LAB_LOG_DIR/etcd.log. tooz speaks etcd's v3 JSON gateway (etcd3gw): no
# gRPC client needed.
#
# onboard_serve_config writes $LAB_STATE_DIR/onboard/serve.conf (0600), a
# ready config for `os-onboard serve` on the lab: the lab's Keystone (its
# admin user validates tokens), the lab's MariaDB as the state store
# (database os_onboard_serve, user onboard, made here) and this etcd.
# `lab/lab env` exports its path as LAB_ONBOARD_SERVE_CONFIG, and LAB_ETCD_URL.
#
# Settings: LAB_ETCD_PORT (2379), LAB_ETCD_PEER_PORT (2380).

: "${LAB_ETCD_PORT:=2379}"
: "${LAB_ETCD_PEER_PORT:=2380}"
LAB_ETCD_DIR=$LAB_STATE_DIR/etcd
LAB_ETCD_PIDFILE=$LAB_ETCD_DIR/run/etcd.pid
LAB_ETCD_LOG=$LAB_LOG_DIR/etcd.log
LAB_ETCD_PACKAGES=(etcd-server)
LAB_ONBOARD_DIR=$LAB_STATE_DIR/onboard
LAB_ONBOARD_SERVE_CONFIG=$LAB_ONBOARD_DIR/serve.conf

etcd_url() { printf 'http://127.0.0.1:%s' "$LAB_ETCD_PORT"; }

etcd_healthy() {
    local body
    { exec 8<>"/dev/tcp/127.0.0.1/$LAB_ETCD_PORT"; } 2>/dev/null || return 1
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&8
    body=$(timeout 5 cat <&8) || true
    exec 8<&- 8>&-
    [[ $body == *'"health":"true"'* ]]
}

etcd_up() {
    local pid t0
    mkdir -p "$LAB_ETCD_DIR/run" "$LAB_ETCD_DIR/data" "$LAB_LOG_DIR"
    chmod 0700 "$LAB_ETCD_DIR/data"
    packages_ensure "${LAB_ETCD_PACKAGES[@]}"
    if pid=$(daemon_pid "$LAB_ETCD_PIDFILE" etcd); then
        log "etcd: already running (pid $pid, $(etcd_url))"
        return 0
    fi
    t0=$(lab_now_us)
    # setsid + nohup: detached from this shell; 3-9 closed: not holding the lab lock.
    ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-} setsid nohup /usr/bin/etcd --name lab \
        --data-dir "$LAB_ETCD_DIR/data" \
        --listen-client-urls "$(etcd_url)" --advertise-client-urls "$(etcd_url)" \
        --listen-peer-urls "http://127.0.0.1:$LAB_ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$LAB_ETCD_PEER_PORT" \
        --initial-cluster "lab=http://127.0.0.1:$LAB_ETCD_PEER_PORT" \
        </dev/null >>"$LAB_ETCD_LOG" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$LAB_ETCD_PIDFILE"
    while ! etcd_healthy; do
        pid_alive "$pid" || die "etcd: exited; see $LAB_ETCD_LOG: $(tail -n 3 "$LAB_ETCD_LOG" | tr '\n' ' ')"
        (($(lab_now_us) - t0 > 60000000)) && die "etcd: not healthy after 60 s; see $LAB_ETCD_LOG"
        sleep 0.2
    done
    log "etcd: serves $(etcd_url) after $(lab_elapsed "$t0")s (pid $pid, log $LAB_ETCD_LOG)"
}

etcd_down() {
    local pid
    if pid=$(daemon_pid "$LAB_ETCD_PIDFILE" etcd); then
        stop_pid etcd "$pid"
    fi
    rm -f "$LAB_ETCD_PIDFILE"
}

# One status block; returns 1 when etcd is not running or not healthy.
etcd_status() {
    local pid
    echo "etcd ($(etcd_url)):"
    if ! pid=$(daemon_pid "$LAB_ETCD_PIDFILE" etcd); then
        printf '  %-9s NOT RUNNING     log %s\n' etcd "$LAB_ETCD_LOG"
        return 1
    fi
    if etcd_healthy; then
        printf '  %-9s pid %-7s alive   healthy   log %s\n' etcd "$pid" "$LAB_ETCD_LOG"
    else
        printf '  %-9s pid %-7s alive   NOT HEALTHY   log %s\n' etcd "$pid" "$LAB_ETCD_LOG"
        return 1
    fi
}

# The serve config's own secrets, made once (random) and kept 0600.
onboard_secret() {
    local f=$LAB_ONBOARD_DIR/db-password
    if [[ ! -s $f ]]; then
        mkdir -p "$LAB_ONBOARD_DIR"
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$f")
    fi
    cat "$f"
}

# onboard_serve_config: the state store database on the lab's MariaDB and
# serve.conf (idempotent; needs MariaDB and Keystone up, i.e. after openstack_up).
onboard_serve_config() {
    local db_pw admin_pw tmp
    mkdir -p "$LAB_ONBOARD_DIR"
    chmod 0700 "$LAB_ONBOARD_DIR"
    db_pw=$(onboard_secret)
    admin_pw=$(os_secret ADMIN)
    os_sql "CREATE DATABASE IF NOT EXISTS os_onboard_serve CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'onboard'@'127.0.0.1' IDENTIFIED BY '$db_pw';
ALTER USER 'onboard'@'127.0.0.1' IDENTIFIED BY '$db_pw';
GRANT ALL PRIVILEGES ON os_onboard_serve.* TO 'onboard'@'127.0.0.1';" >/dev/null ||
        die "etcd: cannot create the serve state store database on MariaDB"
    tmp=$(mktemp "$LAB_ONBOARD_DIR/serve.conf.XXXXXX")
    cat >"$tmp" <<CONF
# os-onboard serve on the lab (written by lab/lib/etcd.sh onboard_serve_config)
[DEFAULT]
state_url = mysql+pymysql://onboard:$db_pw@127.0.0.1/os_onboard_serve?charset=utf8mb4

[api]
bind = 127.0.0.1:8799
auth_strategy = keystone

[coordination]
backend_url = etcd3+$(etcd_url)

[openstack]
cloud = lab-admin
nova_python = $LAB_OS_VENV/bin/python
nova_config = $LAB_OS_ETC/nova/nova.conf
instances_path = $LAB_OS_DATA/nova/instances

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
username = admin
password = $admin_pw
project_name = admin
user_domain_name = Default
project_domain_name = Default
region_name = ${LAB_OPENSTACK_REGION:-RegionOne}
service_token_roles_required = true
CONF
    chmod 0600 "$tmp"
    mv -f "$tmp" "$LAB_ONBOARD_SERVE_CONFIG"
}

# etcd_env [PREFIX]: shell assignments for tests (PREFIX e.g. "export ").
etcd_env() {
    local prefix=${1:-}
    printf '%sLAB_ETCD_URL=%s\n' "$prefix" "$(shell_quote "$(etcd_url)")"
    printf '%sLAB_ONBOARD_SERVE_CONFIG=%s\n' "$prefix" "$(shell_quote "$LAB_ONBOARD_SERVE_CONFIG")"
}
