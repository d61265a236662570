# shellcheck shell=bash
# The lab's OpenStack: a real 2025.1 ("Epoxy") from PyPI in its own venv.
#
# Keystone, Placement, Glance (file store), Nova (api, conductor, scheduler and
# one nova-compute per lab hypervisor host, libvirt driver), Neutron (ML2 with
# the onboard_bridge mechanism driver of extras/neutron: ports bound as
# vif_type=bridge onto the lab bridge) and Cinder (RBD backend on the lab's
# Ceph, rbd_pool = the legacy pool; a VMDK backend on the vSphere simulator
# when it runs), on MariaDB and RabbitMQ, all on 127.0.0.1.
# Nova's VMware computes (one per cluster of the vSphere simulator) live in
# lib/vcenter.sh, which this file calls through small hooks (vcenter_*).
# No systemd: every process is started detached (setsid) with a pidfile and is
# stopped by that pid.
#
# Layout under $LAB_STATE_DIR/openstack (outside the repo; clean clones reuse it):
#   venv/          the venv (rebuilt only when constraints.txt or requirements.in change)
#   etc/           rendered configs (lab/openstack/etc/*), WSGI wrappers, sudo shim
#   run/           pidfiles (<service>.pid = "pid starttime"), config hashes, stamps
#   data/          service state: keystone keys, glance images, nova state_path per
#                  host (compute_id lives there) and the shared instances_path,
#                  rabbitmq mnesia
#   secrets        generated passwords (0600)
# Logs: $LAB_LOG_DIR/openstack/<service>.log (install.log, dbsync-*.log, ...).
# Clouds: /etc/openstack/clouds.yaml gets `lab` (demo user) and `lab-admin`.
#
# nova-compute of a host starts only when that is safe: a brand-new
# nova-compute refuses to start on a host that already runs domains ("My
# hypervisor has existing instances, but I appear to be a new service"). So it
# starts when the host has no domain yet or when the host was prepared
# (`os-onboard prepare-host` wrote <state_path>/compute_id); otherwise it stays
# stopped and openstack_status says why. openstack_compute_start a|b starts it later.
#
# Settings: LAB_OPENSTACK_PYTHON (python3), LAB_OPENSTACK_TIMEOUT (300 s per
# wait), LAB_OPENSTACK_REGION (RegionOne), LAB_OPENSTACK_PHYSNET (physnet1),
# LAB_OPENSTACK_MYSQL_SOCKET (/run/mysqld/mysqld.sock), LAB_HOST_B_URI and
# LAB_HOST_B_LISTEN_ADDR (host B, when the lab has it), LAB_CEPH_* (ceph_env).

: "${LAB_OPENSTACK_PYTHON:=python3}"
: "${LAB_OPENSTACK_TIMEOUT:=300}"
: "${LAB_OPENSTACK_REGION:=RegionOne}"
: "${LAB_OPENSTACK_PHYSNET:=physnet1}"
: "${LAB_OPENSTACK_MYSQL_SOCKET:=/run/mysqld/mysqld.sock}"
LAB_OS_DIR=$LAB_STATE_DIR/openstack
LAB_OS_VENV=$LAB_OS_DIR/venv
LAB_OS_ETC=$LAB_OS_DIR/etc
LAB_OS_RUN=$LAB_OS_DIR/run
LAB_OS_DATA=$LAB_OS_DIR/data
LAB_OS_LOG=${LAB_LOG_DIR:?}/openstack
LAB_OS_SRC=$LAB_DIR/openstack
# os-onboard's pieces that live inside OpenStack's own Python: the ML2 driver
# (neutron) and the Nova-side helper (nova).
LAB_OS_EXTRAS=${LAB_DIR%/lab}/extras
LAB_OS_EXTRA_PKGS=(neutron nova cinder)
LAB_OS_CLOUDS_YAML=/etc/openstack/clouds.yaml
LAB_OS_HOST=127.0.0.1
LAB_OS_KEYSTONE_URL=http://$LAB_OS_HOST:5000
LAB_OS_CINDER_BACKEND=ceph-legacy
LAB_OS_CINDER_HOST=lab
# Cinder's second backend: VMDK on the vSphere simulator (lib/vsphere.sh), in
# the same cinder-volume (a child process per backend), when the simulator
# serves https at up; its volume type has the same name.
LAB_OS_CINDER_VMDK_BACKEND=vmdk
LAB_OS_PACKAGES=(mariadb-server mariadb-client rabbitmq-server)
# Start order. nova-compute-<host> come last (see openstack_compute_start).
LAB_OS_APIS=(keystone placement glance-api nova-api neutron-server cinder-api)
LAB_OS_WORKERS=(nova-conductor nova-scheduler cinder-scheduler cinder-volume)
LAB_OS_COMPUTE_HOSTS=(a b)
LAB_OS_DBS=(keystone placement glance nova_api nova_cell0 nova cinder neutron)

declare -A LAB_OS_PORT=([keystone]=5000 [placement]=8778 [glance-api]=9292 [nova-api]=8774
    [neutron-server]=9696 [cinder-api]=8776)

# --- small helpers ------------------------------------------------------------

os_log() { log "openstack: $*"; }

os_dirs() {
    mkdir -p "$LAB_OS_DIR" "$LAB_OS_RUN" "$LAB_OS_DATA" "$LAB_OS_LOG"
    (umask 077 && mkdir -p "$LAB_OS_ETC")
    # QEMU (libvirt-qemu) must reach the instances under data/nova/instances.
    chmod 0755 "$LAB_OS_DIR" "$LAB_OS_DATA"
}

# Serialise the OpenStack functions among themselves (lab/lab holds fd 9).
os_lock() {
    exec 7>"$LAB_OS_DIR/lock"
    flock -n 7 && return 0
    os_log "waiting for $LAB_OS_DIR/lock (another openstack_* call is running)"
    flock -w 900 7 || die "openstack: another call holds $LAB_OS_DIR/lock for 15 min"
}

os_unlock() { exec 7>&-; }

# The passwords, made once (random, alphanumeric) and kept 0600.
os_secret() {
    local f=$LAB_OS_DIR/secrets key=$1 k v
    if [[ ! -s $f ]]; then
        mkdir -p "$LAB_OS_DIR"
        (
            umask 077
            for k in ADMIN SERVICE DEMO DB RABBIT; do
                printf '%s=%s\n' "$k" "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
            done >"$f"
        )
    fi
    while IFS='=' read -r k v; do
        [[ $k == "$key" ]] && { printf '%s' "$v"; return 0; }
    done <"$f"
    die "openstack: no $key in $f"
}

os_sql() {
    mariadb --protocol=socket -S "$LAB_OPENSTACK_MYSQL_SOCKET" -u root -N -B -e "$1" 2>&1
}

# os_port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
os_port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$LAB_OS_HOST/$1" 2>/dev/null; }

# os_http_code URL: the HTTP status code (000 when nothing answers).
os_http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true; }

os_tail() { tail -n "${2:-5}" "$1" 2>/dev/null | cut -c1-300 | sed 's/^/    | /'; }

# Process start time (clock ticks since boot): pidfiles hold "pid starttime",
# so a recycled pid is never mistaken for our service.
os_starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $stat
    printf '%s' "${20}"
}

# os_pid NAME: the live pid of our service NAME.
os_pid() {
    local f=$LAB_OS_RUN/$1.pid pid start
    [[ -s $f ]] || return 1
    read -r pid start <"$f" || true
    pid_alive "$pid" || return 1
    [[ -z $start || $(os_starttime "$pid") == "$start" ]] || return 1
    printf '%s' "$pid"
}

os_write_pidfile() {
    printf '%s %s\n' "$2" "$(os_starttime "$2")" >"$LAB_OS_RUN/$1.pid"
}

# The members of session SID (every service runs in its own session).
os_session_pids() {
    ps -eo pid=,sid= | awk -v s="$1" '$2 == s && $1 != s {print $1}'
}

# --- venv -----------------------------------------------------------------------

os_python_version() { "$LAB_OPENSTACK_PYTHON" -c 'import sys; print(sys.version.split()[0])'; }

os_venv_stamp() {
    {
        cat "$LAB_OS_SRC/constraints.txt" "$LAB_OS_SRC/requirements.in"
        os_python_version
    } | sha256sum | cut -c1-16
}

os_extras_stamp() {
    (cd "$LAB_OS_EXTRAS" && find "${LAB_OS_EXTRA_PKGS[@]}" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info*' ! -path '*/build/*' |
        LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}

# os-onboard itself, so that `openstack onboard ...` (its python-openstackclient
# plugin) works next to the other OpenStack commands. Reinstalled (not
# editable: the venv outlives any one clone) when the package's sources change.
os_onboard_plugin_ensure() {
    local repo=${LAB_DIR%/lab} stamp logf=$LAB_OS_LOG/install.log
    stamp=$( (cd "$repo" && find pyproject.toml os_onboard -type f -name '*.py' -o -name pyproject.toml |
        LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)
    [[ $(cat "$LAB_OS_VENV/.lab-onboard-stamp" 2>/dev/null) == "$stamp" ]] && return 0
    "$LAB_OS_VENV/bin/pip" install --no-input -c "$LAB_OS_SRC/constraints.txt" "$repo" >>"$logf" 2>&1 ||
        die "openstack: installing os-onboard into $LAB_OS_VENV failed; see $logf"
    rm -rf "$repo/build"
    # stevedore caches entry points per sys.path and can miss a reinstall that
    # adds one (seen: a new `openstack onboard` command not found).
    rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/python-entrypoints"
    printf '%s\n' "$stamp" >"$LAB_OS_VENV/.lab-onboard-stamp"
    os_log "installed os-onboard into the venv (openstack onboard ...)"
}

# Install the venv when constraints.txt / requirements.in / Python changed.
os_venv_ensure() {
    local stamp t0 logf=$LAB_OS_LOG/install.log name site so
    stamp=$(os_venv_stamp)
    if [[ -x $LAB_OS_VENV/bin/python && $(cat "$LAB_OS_VENV/.lab-stamp" 2>/dev/null) == "$stamp" ]]; then
        :
    else
        packages_ensure libvirt-dev pkg-config gcc
        if os_any_running; then
            os_log "constraints changed: stopping the services before the venv is rebuilt"
            os_services_stop
        fi
        t0=$(lab_now_us)
        os_log "installing the venv $LAB_OS_VENV (Python $(os_python_version), lab/openstack/constraints.txt; log $logf)"
        rm -rf "$LAB_OS_VENV"
        "$LAB_OPENSTACK_PYTHON" -m venv "$LAB_OS_VENV" >>"$logf" 2>&1 ||
            die "openstack: '$LAB_OPENSTACK_PYTHON -m venv $LAB_OS_VENV' failed; see $logf"
        if ! "$LAB_OS_VENV/bin/pip" install --no-input -c "$LAB_OS_SRC/constraints.txt" \
            -r "$LAB_OS_SRC/requirements.in" >>"$logf" 2>&1; then
            die "openstack: pip install failed; see $logf: $(grep -E 'ERROR|error:' "$logf" | tail -n 2 | tr '\n' ' ')"
        fi
        "$LAB_OS_VENV/bin/pip" check >>"$logf" 2>&1 || die "openstack: pip check failed; see $logf"
        printf '%s\n' "$stamp" >"$LAB_OS_VENV/.lab-stamp"
        os_log "venv installed in $(lab_elapsed "$t0")s ($(du -sm "$LAB_OS_VENV" | cut -f1) MB)"
    fi
    stamp=$(os_extras_stamp)
    if [[ $(cat "$LAB_OS_VENV/.lab-extras-stamp" 2>/dev/null) != "$stamp" ]]; then
        local extra
        for extra in "${LAB_OS_EXTRA_PKGS[@]}"; do
            "$LAB_OS_VENV/bin/pip" install --no-input --no-deps --no-build-isolation --force-reinstall \
                "$LAB_OS_EXTRAS/$extra" >>"$logf" 2>&1 ||
                die "openstack: installing $LAB_OS_EXTRAS/$extra failed; see $logf"
            rm -rf "$LAB_OS_EXTRAS/$extra/build" "$LAB_OS_EXTRAS/$extra"/*.egg-info
        done
        rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/python-entrypoints" # stevedore's stale cache
        printf '%s\n' "$stamp" >"$LAB_OS_VENV/.lab-extras-stamp"
        os_log "installed extras/{${LAB_OS_EXTRA_PKGS[*]}} into the venv"
    fi
    os_onboard_plugin_ensure
    # Cinder's RBD driver needs Ceph's Python bindings: Debian's modules (from
    # ceph.sh's python3-rados/python3-rbd) load in this CPython 3.11 too.
    site=$("$LAB_OS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' 2>/dev/null) || return 0
    for name in rados rbd; do
        for so in /usr/lib/python3/dist-packages/"$name".cpython-311-*.so; do
            [[ -e $so && ! -e $site/${so##*/} ]] && ln -s "$so" "$site/${so##*/}"
        done
    done
    return 0
}

# --- MariaDB and RabbitMQ -----------------------------------------------------------

os_mysql_ping() { mariadb-admin --protocol=socket -S "$LAB_OPENSTACK_MYSQL_SOCKET" -u root ping >/dev/null 2>&1; }

os_mariadb_up() {
    local pid logf=$LAB_OS_LOG/mariadb.log i
    if os_mysql_ping; then
        if pid=$(os_pid mariadb); then
            os_log "mariadb already running (pid $pid)"
        else
            os_log "using the MariaDB that already runs on $LAB_OPENSTACK_MYSQL_SOCKET (not started by the lab; down leaves it alone)"
        fi
        return 0
    fi
    os_port_open 3306 && die "openstack: something listens on 127.0.0.1:3306 but $LAB_OPENSTACK_MYSQL_SOCKET does not answer as root; stop it or set LAB_OPENSTACK_MYSQL_SOCKET"
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$logf" 2>&1 ||
        die "openstack: mariadb-install-db failed; see $logf"
    mkdir -p "${LAB_OPENSTACK_MYSQL_SOCKET%/*}"
    chown mysql:mysql "${LAB_OPENSTACK_MYSQL_SOCKET%/*}"
    lab_template "$LAB_OS_SRC/etc/mariadb.cnf" SOCKET="$LAB_OPENSTACK_MYSQL_SOCKET" >"$LAB_OS_ETC/mariadb.cnf"
    chmod 0644 "$LAB_OS_ETC/mariadb.cnf"
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid nohup /usr/sbin/mariadbd \
        --defaults-file="$LAB_OS_ETC/mariadb.cnf" </dev/null >>"$logf" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    os_write_pidfile mariadb "$pid"
    for ((i = 0; i < 600; i++)); do
        os_mysql_ping && { os_log "started mariadb (pid $pid, 127.0.0.1:3306, log $logf)"; return 0; }
        pid_alive "$pid" || die "openstack: mariadb exited; see $logf:
$(os_tail "$logf")"
        sleep 0.1
    done
    die "openstack: mariadb (pid $pid) does not answer after 60s; see $logf"
}

os_rabbit_env() {
    OS_RABBIT_ENV=(
        PATH=/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin
        HOME="$LAB_OS_DATA/rabbitmq" LANG=C.UTF-8
        RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 ERL_EPMD_ADDRESS=127.0.0.1
        RABBITMQ_MNESIA_BASE="$LAB_OS_DATA/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$LAB_OS_LOG"
        RABBITMQ_LOGS=- RABBITMQ_CONFIG_FILE="$LAB_OS_ETC/rabbitmq/rabbitmq.conf"
        RABBITMQ_ENABLED_PLUGINS_FILE="$LAB_OS_ETC/rabbitmq/enabled_plugins"
        RABBITMQ_CONF_ENV_FILE="$LAB_OS_ETC/rabbitmq/rabbitmq-env.conf"
        RABBITMQ_PID_FILE="$LAB_OS_RUN/rabbitmq-beam.pid"
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    )
}

os_rabbitmq_up() {
    local pid logf=$LAB_OS_LOG/rabbitmq.log i epmd_before
    if pid=$(os_pid rabbitmq); then
        os_port_open 5672 && { os_log "rabbitmq already running (pid $pid)"; return 0; }
    elif os_port_open 5672; then
        # Somebody else's broker: give it our user through its own rabbitmqctl.
        if [[ ! -e $LAB_OS_RUN/rabbitmq-foreign-user ]]; then
            rabbitmqctl add_user openstack "$(os_secret RABBIT)" >/dev/null 2>&1 ||
                rabbitmqctl change_password openstack "$(os_secret RABBIT)" >/dev/null 2>&1 ||
                die "openstack: a broker listens on 127.0.0.1:5672 (not the lab's) and rabbitmqctl cannot add user 'openstack' to it"
            rabbitmqctl set_permissions openstack '.*' '.*' '.*' >/dev/null 2>&1 || true
            touch "$LAB_OS_RUN/rabbitmq-foreign-user"
        fi
        os_log "using the RabbitMQ that already listens on 127.0.0.1:5672 (not started by the lab; down leaves it alone)"
        return 0
    fi
    mkdir -p "$LAB_OS_ETC/rabbitmq" "$LAB_OS_DATA/rabbitmq"
    lab_template "$LAB_OS_SRC/etc/rabbitmq.conf" RABBIT_PASSWORD="$(os_secret RABBIT)" >"$LAB_OS_ETC/rabbitmq/rabbitmq.conf"
    printf '[].\n' >"$LAB_OS_ETC/rabbitmq/enabled_plugins"
    : >"$LAB_OS_ETC/rabbitmq/rabbitmq-env.conf"
    epmd_before=$(pids_by_comm epmd | head -n 1)
    os_rabbit_env
    env -i "${OS_RABBIT_ENV[@]}" setsid nohup /usr/lib/rabbitmq/bin/rabbitmq-server \
        </dev/null >>"$logf" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    os_write_pidfile rabbitmq "$pid"
    for ((i = 0; i < 1200; i++)); do
        if os_port_open 5672; then
            if [[ -z $epmd_before ]] && epmd_before=$(pids_by_comm epmd | head -n 1) && [[ -n $epmd_before ]]; then
                os_write_pidfile epmd "$epmd_before" # started by our broker: down stops it
            fi
            os_log "started rabbitmq (pid $pid, 127.0.0.1:5672, log $logf)"
            return 0
        fi
        pid_alive "$pid" || die "openstack: rabbitmq exited; see $logf:
$(os_tail "$logf")"
        sleep 0.1
    done
    die "openstack: rabbitmq (pid $pid) does not listen on 5672 after 120s; see $logf"
}

# --- databases --------------------------------------------------------------------

# Create the databases and the user; print the names of databases created now.
os_databases_ensure() {
    local existing db sql pw
    pw=$(os_secret DB)
    existing=" $(os_sql 'SELECT schema_name FROM information_schema.schemata' | tr '\n' ' ') "
    sql="CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER 'openstack'@'127.0.0.1' IDENTIFIED BY '$pw';"
    for db in "${LAB_OS_DBS[@]}"; do
        sql+="CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb3;
GRANT ALL PRIVILEGES ON \`$db\`.* TO 'openstack'@'127.0.0.1';"
        [[ $existing == *" $db "* ]] || printf '%s\n' "$db"
    done
    os_sql "$sql" >/dev/null || die "openstack: creating the databases failed: $(os_sql "$sql")"
}

# Table count of each database: "db count" lines.
os_db_tables() {
    os_sql "SELECT table_schema, COUNT(*) FROM information_schema.tables GROUP BY table_schema"
}

# --- configuration ------------------------------------------------------------------

os_db_url() { printf 'mysql+pymysql://openstack:%s@127.0.0.1/' "$(os_secret DB)"; }

os_authtoken() {
    lab_template "$LAB_OS_SRC/etc/authtoken.inc" KEYSTONE_URL="$LAB_OS_KEYSTONE_URL" \
        SERVICE_USER="$1" SERVICE_PASSWORD="$(os_secret SERVICE)" REGION="$LAB_OPENSTACK_REGION"
}

# The common template keys.
os_template_args() {
    OS_T=(
        DB_URL="$(os_db_url)" DATA="$LAB_OS_DATA" ETC="$LAB_OS_ETC" REGION="$LAB_OPENSTACK_REGION"
        KEYSTONE_URL="$LAB_OS_KEYSTONE_URL" SERVICE_PASSWORD="$(os_secret SERVICE)"
        TRANSPORT_URL="rabbit://openstack:$(os_secret RABBIT)@127.0.0.1:5672/"
        PHYSNET="$LAB_OPENSTACK_PHYSNET" BRIDGE="$LAB_BRIDGE"
    )
    # lib/vcenter.sh: the VMware computes' keys (ml2_conf.ini's port-group mapping).
    if declare -F vcenter_template_args >/dev/null; then vcenter_template_args; fi
}

# os_write FILE: stdin to FILE unless unchanged (keeps mtimes and hashes stable).
os_write() {
    local new
    new=$(cat)
    [[ -e $1 && $new == "$(cat "$1")" ]] && return 0
    mkdir -p "${1%/*}"
    printf '%s\n' "$new" >"$1"
}

# Ceph: usable when ceph.sh's settings are there and the cinder user can list the legacy pool.
os_ceph_ready() {
    local out
    # ceph.sh sets LAB_CEPH_* when sourced; ceph_env prints them too.
    if declare -F ceph_env >/dev/null && [[ -z ${LAB_CEPH_CONF:-} ]]; then
        out=$(ceph_env 2>/dev/null) || true
        eval "$out"
    fi
    [[ -n ${LAB_CEPH_CONF:-} && -n ${LAB_CEPH_POOL_LEGACY:-} && -n ${LAB_CEPH_USER:-} ]] || {
        OS_CEPH_WHY="Ceph is not part of the lab yet (no ceph_env / LAB_CEPH_CONF)"
        return 1
    }
    [[ -r /usr/lib/python3/dist-packages/rbd.cpython-311-x86_64-linux-gnu.so ]] || {
        OS_CEPH_WHY="python3-rbd is not installed (Cinder's RBD driver needs it)"
        return 1
    }
    if ! timeout 10 rbd --conf "$LAB_CEPH_CONF" --id "${LAB_CEPH_USER#client.}" \
        ${LAB_CEPH_KEYRING:+--keyring "$LAB_CEPH_KEYRING"} ls "$LAB_CEPH_POOL_LEGACY" >/dev/null 2>&1; then
        OS_CEPH_WHY="Ceph does not answer (rbd ls $LAB_CEPH_POOL_LEGACY as ${LAB_CEPH_USER} failed)"
        return 1
    fi
    OS_CEPH_WHY=
}

# The vSphere simulator, for Cinder's VMDK backend: running and serving https.
os_vmdk_ready() {
    OS_VMDK_WHY=
    if ! declare -F vsphere_password >/dev/null || ! daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab >/dev/null; then
        OS_VMDK_WHY="the vSphere simulator is not running"
        return 1
    fi
    if [[ ! -s $LAB_VSPHERE_CERT ]] ||
        ! timeout 2 bash -c "exec 3<>/dev/tcp/$LAB_VSPHERE_ADDR/$LAB_VSPHERE_HTTPS_PORT" 2>/dev/null; then
        OS_VMDK_WHY="the vSphere simulator does not serve https on $LAB_VSPHERE_ADDR:$LAB_VSPHERE_HTTPS_PORT"
        return 1
    fi
}

# The enabled backends of the rendered cinder.conf, comma separated.
os_cinder_backends() {
    sed -n 's/^enabled_backends = //p' "$LAB_OS_ETC/cinder/cinder.conf" 2>/dev/null
}

os_render() {
    local e=$LAB_OS_ETC v=$LAB_OS_VENV/etc backends='' section='' default_type=__DEFAULT__ c clusters=''
    os_template_args
    mkdir -p "$e"/{keystone,placement,glance,nova,neutron,cinder} "$LAB_OS_DATA"/{keystone,glance,cinder,neutron} \
        "$LAB_OS_DATA/nova/controller" "$LAB_OS_DATA/nova/instances"
    chmod 0755 "$LAB_OS_DATA/nova" "$LAB_OS_DATA/nova/instances"
    lab_template "$LAB_OS_SRC/etc/keystone.conf" "${OS_T[@]}" | os_write "$e/keystone/keystone.conf"
    lab_template "$LAB_OS_SRC/etc/placement.conf" "${OS_T[@]}" AUTHTOKEN="$(os_authtoken placement)" |
        os_write "$e/placement/placement.conf"
    lab_template "$LAB_OS_SRC/etc/glance-api.conf" "${OS_T[@]}" AUTHTOKEN="$(os_authtoken glance)" |
        os_write "$e/glance/glance-api.conf"
    os_write "$e/glance/glance-api-paste.ini" <"$v/glance/glance-api-paste.ini"
    lab_template "$LAB_OS_SRC/etc/nova.conf" "${OS_T[@]}" AUTHTOKEN="$(os_authtoken nova)" |
        os_write "$e/nova/nova.conf"
    os_write "$e/nova/api-paste.ini" <"$v/nova/api-paste.ini"
    lab_template "$LAB_OS_SRC/etc/neutron.conf" "${OS_T[@]}" AUTHTOKEN="$(os_authtoken neutron)" |
        os_write "$e/neutron/neutron.conf"
    lab_template "$LAB_OS_SRC/etc/ml2_conf.ini" "${OS_T[@]}" | os_write "$e/neutron/ml2_conf.ini"
    os_write "$e/neutron/api-paste.ini" <"$v/neutron/api-paste.ini"
    if os_ceph_ready; then
        backends=$LAB_OS_CINDER_BACKEND default_type=$LAB_OS_CINDER_BACKEND
        section=$(lab_template "$LAB_OS_SRC/etc/cinder-rbd.inc" BACKEND="$LAB_OS_CINDER_BACKEND" \
            CEPH_POOL="$LAB_CEPH_POOL_LEGACY" CEPH_CONF="$LAB_CEPH_CONF" CEPH_USER="${LAB_CEPH_USER#client.}" \
            CEPH_KEYRING="${LAB_CEPH_KEYRING:-}" CEPH_SECRET_UUID="${LAB_CEPH_SECRET_UUID:-}")
        if os_vmdk_ready; then
            # Backings go to the simulator's clusters (DC0_C<n>: one per VMware
            # compute, lib/vcenter.sh), named after LAB_VSPHERE_MODEL's -clusters.
            if [[ $LAB_VSPHERE_MODEL =~ -clusters[[:space:]]+([0-9]+) ]]; then
                for ((c = 0; c < BASH_REMATCH[1]; c++)); do
                    clusters+=${clusters:+$'\n'}"vmware_cluster_name = DC0_C$c"
                done
            fi
            backends+=,$LAB_OS_CINDER_VMDK_BACKEND
            section+=$'\n'$(lab_template "$LAB_OS_SRC/etc/cinder-vmdk.inc" BACKEND="$LAB_OS_CINDER_VMDK_BACKEND" \
                VC_HOST="$LAB_VSPHERE_ADDR" VC_PORT="$LAB_VSPHERE_HTTPS_PORT" VC_USER="$LAB_VSPHERE_USER" \
                VC_PASSWORD="$(vsphere_password)" VC_CA_FILE="$LAB_VSPHERE_CERT" VC_CLUSTERS="$clusters")
        else
            os_log "cinder: no $LAB_OS_CINDER_VMDK_BACKEND backend: $OS_VMDK_WHY"
        fi
    fi
    lab_template "$LAB_OS_SRC/etc/cinder.conf" "${OS_T[@]}" AUTHTOKEN="$(os_authtoken cinder)" \
        CINDER_BACKENDS="$backends" CINDER_DEFAULT_TYPE="$default_type" CINDER_BACKEND_SECTION="$section" |
        os_write "$e/cinder/cinder.conf"
    os_write "$e/cinder/api-paste.ini" <"$v/cinder/api-paste.ini"
    os_write "$e/cinder/resource_filters.json" <"$v/cinder/resource_filters.json"
    # Copies, so running services never depend on the clone that started them.
    mkdir -p "$e/wsgi/onboard_lab_wsgi" "$LAB_OS_DIR/bin"
    local f
    for f in "$LAB_OS_SRC"/wsgi/onboard_lab_wsgi/*.py; do
        os_write "$e/wsgi/onboard_lab_wsgi/${f##*/}" <"$f"
    done
    os_write "$LAB_OS_DIR/bin/sudo" <"$LAB_OS_SRC/bin/sudo"
    chmod 0755 "$LAB_OS_DIR/bin/sudo"
}

# --- nova-compute hosts -------------------------------------------------------------

os_compute_uri() {
    case $1 in
    a) printf '%s' "$LAB_HOST_A_URI" ;;
    b) printf '%s' "${LAB_HOST_B_URI:-}" ;;
    esac
}

os_compute_ip() {
    case $1 in
    a) printf '%s' "${LAB_HOST_A_LISTEN_ADDR:-127.0.0.1}" ;;
    b) printf '%s' "${LAB_HOST_B_LISTEN_ADDR:-127.0.0.2}" ;;
    esac
}

os_compute_state() { printf '%s/nova/host-%s' "$LAB_OS_DATA" "$1"; }
os_compute_conf() { printf '%s/nova/nova-compute-%s.conf' "$LAB_OS_ETC" "$1"; }

# The compute's [DEFAULT] host: the hostname its libvirtd reports (also the
# hypervisor/node name Nova gives it). Cached for openstack_env.
os_compute_hostname() {
    local h=$1 uri name
    uri=$(os_compute_uri "$h")
    if [[ -n $uri ]] && name=$(virsh -c "$uri" --readonly hostname 2>/dev/null) && [[ -n $name ]]; then
        printf '%s\n' "$name" >"$LAB_OS_RUN/compute-$h.hostname"
        printf '%s' "$name"
        return 0
    fi
    [[ -s $LAB_OS_RUN/compute-$h.hostname ]] && { cat "$LAB_OS_RUN/compute-$h.hostname"; return 0; }
    return 1
}

# os_compute_safe HOST: 0 when nova-compute may start there; else sets OS_COMPUTE_WHY.
os_compute_safe() {
    local h=$1 uri doms
    uri=$(os_compute_uri "$h")
    OS_COMPUTE_WHY=
    if [[ -z $uri ]]; then
        OS_COMPUTE_WHY="host ${h^^} is not part of the lab yet (LAB_HOST_${h^^}_URI is unset)"
        return 1
    fi
    if ! virsh -c "$uri" --readonly version >/dev/null 2>&1; then
        OS_COMPUTE_WHY="libvirtd of host ${h^^} does not answer on $uri"
        return 1
    fi
    [[ -s $(os_compute_state "$h")/compute_id ]] && return 0
    doms=$(virsh -c "$uri" --readonly list --all --name 2>/dev/null | awk 'NF' | paste -sd' ')
    if [[ -n $doms ]]; then
        OS_COMPUTE_WHY="host ${h^^} has unmanaged domains ($doms) and no $(os_compute_state "$h")/compute_id; run os-onboard prepare-host"
        return 1
    fi
    return 0
}

os_compute_render() {
    local h=$1 name
    name=$(os_compute_hostname "$h") || return 1
    os_template_args
    mkdir -p "$(os_compute_state "$h")"
    lab_template "$LAB_OS_SRC/etc/nova-compute.conf" "${OS_T[@]}" HOST_LABEL="${h^^}" \
        COMPUTE_HOST="$name" MY_IP="$(os_compute_ip "$h")" LIBVIRT_URI="$(os_compute_uri "$h")" \
        STATE_PATH="$(os_compute_state "$h")" INSTANCES_PATH="$LAB_OS_DATA/nova/instances" |
        os_write "$(os_compute_conf "$h")"
}

# --- services -------------------------------------------------------------------------

# os_service_def NAME: OS_CMD (argv), OS_ENV (extra environment), OS_FILES
# (what it reads: a change restarts it) and OS_CHECK (health check).
os_service_def() {
    local name=$1 v=$LAB_OS_VENV/bin e=$LAB_OS_ETC workers=1 module
    OS_ENV=() OS_FILES=() OS_CMD=() OS_CHECK=
    case $name in
    keystone | placement | glance-api | nova-api | cinder-api)
        module=${name//-/_}
        [[ $name == keystone ]] && workers=2
        OS_CMD=("$v/gunicorn" --name "lab-$name" --bind "$LAB_OS_HOST:${LAB_OS_PORT[$name]}"
            --workers "$workers" --timeout 120 --graceful-timeout 5 --pythonpath "$e/wsgi"
            "onboard_lab_wsgi.$module:application")
        OS_CHECK="http:${LAB_OS_PORT[$name]}"
        OS_FILES=("$e/wsgi/onboard_lab_wsgi/$module.py")
        ;;
    esac
    case $name in
    keystone) OS_ENV=(OS_KEYSTONE_CONFIG_DIR="$e/keystone") OS_FILES+=("$e/keystone/keystone.conf") ;;
    placement) OS_ENV=(OS_PLACEMENT_CONFIG_DIR="$e/placement") OS_FILES+=("$e/placement/placement.conf") ;;
    glance-api) OS_ENV=(OS_GLANCE_CONFIG_DIR="$e/glance") OS_FILES+=("$e/glance/glance-api.conf" "$e/glance/glance-api-paste.ini") ;;
    nova-api) OS_ENV=(OS_NOVA_CONFIG_DIR="$e/nova") OS_FILES+=("$e/nova/nova.conf" "$e/nova/api-paste.ini") ;;
    cinder-api) OS_ENV=(LAB_WSGI_ARGS="--config-file $e/cinder/cinder.conf") OS_FILES+=("$e/cinder/cinder.conf") ;;
    nova-conductor | nova-scheduler)
        OS_CMD=("$v/$name" --config-file "$e/nova/nova.conf") OS_FILES=("$e/nova/nova.conf")
        OS_CHECK="service:nova:$name:controller"
        ;;
    neutron-server)
        OS_CMD=("$v/neutron-server" --config-file "$e/neutron/neutron.conf" --config-file "$e/neutron/ml2_conf.ini")
        OS_FILES=("$e/neutron/neutron.conf" "$e/neutron/ml2_conf.ini" "$LAB_OS_VENV/.lab-extras-stamp")
        OS_CHECK="http:${LAB_OS_PORT[$name]}"
        ;;
    cinder-scheduler | cinder-volume)
        OS_CMD=("$v/$name" --config-file "$e/cinder/cinder.conf") OS_FILES=("$e/cinder/cinder.conf")
        OS_CHECK="service:cinder:$name:$LAB_OS_CINDER_HOST"
        [[ $name == cinder-volume ]] && OS_CHECK+="@$LAB_OS_CINDER_BACKEND"
        # The VMDK backend: a simulator restart (new certificate, inventory
        # re-made) restarts cinder-volume, so no stale session or folder cache.
        if [[ $name == cinder-volume && ,$(os_cinder_backends), == *,$LAB_OS_CINDER_VMDK_BACKEND,* ]]; then
            OS_FILES+=("$LAB_VSPHERE_PIDFILE" "$LAB_VSPHERE_CERT")
        fi
        ;;
    nova-compute-?)
        # <name>.d: settings a test adds for one run (e.g. [workarounds]), removed after it
        mkdir -p "$e/nova/$name.d"
        OS_CMD=("$v/nova-compute" --config-file "$(os_compute_conf "${name#nova-compute-}")"
            --config-dir "$e/nova/$name.d")
        OS_FILES=("$(os_compute_conf "${name#nova-compute-}")")
        OS_CHECK="compute:$(cat "$LAB_OS_RUN/compute-${name#nova-compute-}.hostname" 2>/dev/null)"
        ;;
    nova-compute-vc*) declare -F vcenter_service_def >/dev/null && vcenter_service_def "$name" ;; # lib/vcenter.sh
    esac
    ((${#OS_CMD[@]})) || die "openstack: unknown service $name"
    OS_FILES+=("$LAB_OS_VENV/.lab-stamp")
}

os_base_env() {
    OS_BASE_ENV=(PATH="$LAB_OS_DIR/bin:$LAB_OS_VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root
        LANG=C.UTF-8 PYTHONUNBUFFERED=1)
}

# The configuration a running service was started with.
os_service_hash() {
    { printf '%s\n' "${OS_CMD[@]}" "${OS_ENV[@]}"; cat "${OS_FILES[@]}" 2>/dev/null; } | sha256sum | cut -c1-16
}

# os_service_start NAME: start it unless it runs with the same configuration.
# Adds it to OS_PENDING (health check) when it was (re)started.
os_service_start() {
    local name=$1 logf=$LAB_OS_LOG/$1.log pid hash
    os_service_def "$name"
    hash=$(os_service_hash)
    if pid=$(os_pid "$name"); then
        if [[ $(cat "$LAB_OS_RUN/$name.hash" 2>/dev/null) == "$hash" ]]; then
            OS_RUNNING+=("$name")
            return 0
        fi
        os_log "$name: configuration changed; restarting it"
        os_service_stop "$name"
    fi
    os_base_env
    printf '\n==== %s lab: starting %s ====\n' "$(date '+%F %T')" "$name" >>"$logf"
    # 3-6, 8 closed too: a caller's `flock /tmp/os-onboard-lab.lock lab/lab up` passes
    # its lock on fd 3, and a service keeping it would hold the lab's lock forever.
    env -i "${OS_BASE_ENV[@]}" "${OS_ENV[@]}" setsid nohup "${OS_CMD[@]}" </dev/null >>"$logf" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    os_write_pidfile "$name" "$pid"
    printf '%s\n' "$hash" >"$LAB_OS_RUN/$name.hash"
    # Seconds since the epoch (UTC): a DB service row must be at least this fresh.
    date -u +%s >"$LAB_OS_RUN/$name.started"
    printf '%s\n' "$(stat -c %s "$logf")" >"$LAB_OS_RUN/$name.logoffset"
    OS_PENDING+=("$name")
}

os_service_stop() {
    local name=$1 pid left
    if pid=$(os_pid "$name"); then
        stop_pid "openstack $name" "$pid" 20
        # Left-overs of its session (workers, privsep daemons).
        left=$(os_session_pids "$pid" | paste -sd' ')
        if [[ -n $left ]]; then
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL $left 2>/dev/null || true
            os_log "$name: killed left-over session members $left"
        fi
    fi
    rm -f "$LAB_OS_RUN/$name.pid" "$LAB_OS_RUN/$name.hash" "$LAB_OS_RUN/$name.started"
}

os_all_services() {
    printf '%s\n' "${LAB_OS_APIS[@]}" "${LAB_OS_WORKERS[@]}"
    local h
    for h in "${LAB_OS_COMPUTE_HOSTS[@]}"; do printf 'nova-compute-%s\n' "$h"; done
    # lib/vcenter.sh: the VMware computes (one per simulator cluster).
    if declare -F vcenter_services >/dev/null; then vcenter_services; fi
}

os_any_running() {
    local name
    for name in $(os_all_services); do
        os_pid "$name" >/dev/null && return 0
    done
    return 1
}

# Stop every OpenStack service (in parallel), not MariaDB/RabbitMQ.
os_services_stop() {
    local name pids=()
    for name in $(os_all_services | tac); do
        os_pid "$name" >/dev/null || { rm -f "$LAB_OS_RUN/$name.pid"; continue; }
        os_service_stop "$name" &
        pids+=($!)
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
}

# The epoch second of a DB service row's last report (empty: no row).
os_service_seen() {
    local db=$1 binary=$2 host=$3 col=updated_at
    os_sql "SELECT MAX(TIMESTAMPDIFF(SECOND, '1970-01-01', COALESCE($col, created_at))) FROM \`$db\`.services
        WHERE \`binary\` = '$binary' AND host = '$host' AND deleted = 0" | sed 's/NULL//'
}

# os_service_healthy NAME: 0 healthy, 1 not yet.
os_service_healthy() {
    local name=$1 check code seen started host
    os_service_def "$name"
    check=$OS_CHECK
    started=$(cat "$LAB_OS_RUN/$name.started" 2>/dev/null || echo 0)
    case $check in
    http:*)
        code=$(os_http_code "http://$LAB_OS_HOST:${check#http:}/")
        [[ $code == [23]?? || $code == 401 ]]
        ;;
    service:*)
        IFS=: read -r _ db binary host <<<"$check"
        seen=$(os_service_seen "$db" "$binary" "$host")
        [[ -n $seen ]] && ((seen > started)) || return 1
        [[ $name == cinder-volume ]] || return 0
        # cinder-volume reports before its drivers are set up: wait for each
        # backend's (RBD, VMDK) "completed" line.
        local out
        out=$(tail -c +"$(($(cat "$LAB_OS_RUN/$name.logoffset" 2>/dev/null || echo 0) + 1))" "$LAB_OS_LOG/$name.log" |
            grep -E 'Driver initialization completed successfully|Error encountered during initialization of driver' || true)
        [[ $out != *'Error encountered'* ]] ||
            die "openstack: cinder-volume runs but its RBD driver failed to initialise (Ceph: $LAB_CEPH_CONF, pool $LAB_CEPH_POOL_LEGACY); see $LAB_OS_LOG/$name.log:
$(grep -A3 'Error encountered during initialization' "$LAB_OS_LOG/$name.log" | tail -n 4 | cut -c1-300 | sed 's/^/    | /')"
        local backends need
        IFS=, read -r -a backends <<<"$(os_cinder_backends)"
        need=${#backends[@]}
        ((need)) || need=1
        (($(grep -c 'completed successfully' <<<"$out" || true) >= need))
        ;;
    compute:*)
        host=${check#compute:}
        seen=$(os_service_seen nova nova-compute "$host")
        [[ -n $seen ]] && ((seen > started)) &&
            [[ -n $(os_sql "SELECT id FROM nova.compute_nodes WHERE host = '$host' AND deleted = 0 LIMIT 1") ]] &&
            # Mapped into cell1 (nova-scheduler's discover_hosts_in_cells_interval): schedulable.
            [[ -n $(os_sql "SELECT id FROM nova_api.host_mappings WHERE host = '$host' LIMIT 1") ]]
        ;;
    esac
}

# Wait until every service of OS_PENDING is healthy; die naming the first one
# that exits or times out, with its log.
os_wait_pending() {
    local t0 name pid logf left=() off
    t0=$(lab_now_us)
    while ((${#OS_PENDING[@]})); do
        left=()
        for name in "${OS_PENDING[@]}"; do
            logf=$LAB_OS_LOG/$name.log
            if ! pid=$(os_pid "$name"); then
                off=$(cat "$LAB_OS_RUN/$name.logoffset" 2>/dev/null || echo 0)
                die "openstack: $name exited during start-up; see $logf:
$(tail -c +"$((off + 1))" "$logf" | grep -E 'ERROR|CRITICAL|Error|error' | tail -n 4 | cut -c1-300 | sed 's/^/    | /')
$(os_tail "$logf" 3)"
            fi
            if os_service_healthy "$name"; then
                os_log "$name is up (pid $pid) after $(lab_elapsed "$t0")s"
            else
                left+=("$name")
            fi
        done
        OS_PENDING=("${left[@]}")
        ((${#OS_PENDING[@]})) || break
        if (($(lab_now_us) - t0 > LAB_OPENSTACK_TIMEOUT * 1000000)); then
            name=${OS_PENDING[0]}
            die "openstack: ${OS_PENDING[*]} not healthy after ${LAB_OPENSTACK_TIMEOUT}s (check: $(os_service_def "$name"; printf '%s' "$OS_CHECK")); see $LAB_OS_LOG/$name.log:
$(os_tail "$LAB_OS_LOG/$name.log" 4)"
        fi
        sleep 0.5
    done
}

# --- database syncs and bootstrap -------------------------------------------------------

os_manage() { env -i "${OS_BASE_ENV[@]}" "$@"; }

# os_dbsync SERVICE: the schema (and bootstrap) steps of SERVICE; run in the background.
os_dbsync() {
    local svc=$1 v=$LAB_OS_VENV/bin e=$LAB_OS_ETC
    os_base_env
    set -e
    case $svc in
    keystone)
        os_manage "$v/keystone-manage" --config-file "$e/keystone/keystone.conf" db_sync
        mkdir -p "$LAB_OS_DATA/keystone/fernet-keys" "$LAB_OS_DATA/keystone/credential-keys"
        chmod 0700 "$LAB_OS_DATA/keystone/fernet-keys" "$LAB_OS_DATA/keystone/credential-keys"
        [[ -e $LAB_OS_DATA/keystone/fernet-keys/0 ]] ||
            os_manage "$v/keystone-manage" --config-file "$e/keystone/keystone.conf" fernet_setup \
                --keystone-user root --keystone-group root
        [[ -e $LAB_OS_DATA/keystone/credential-keys/0 ]] ||
            os_manage "$v/keystone-manage" --config-file "$e/keystone/keystone.conf" credential_setup \
                --keystone-user root --keystone-group root
        os_manage "$v/keystone-manage" --config-file "$e/keystone/keystone.conf" bootstrap \
            --bootstrap-password "$(os_secret ADMIN)" --bootstrap-region-id "$LAB_OPENSTACK_REGION" \
            --bootstrap-admin-url "$LAB_OS_KEYSTONE_URL/v3/" --bootstrap-internal-url "$LAB_OS_KEYSTONE_URL/v3/" \
            --bootstrap-public-url "$LAB_OS_KEYSTONE_URL/v3/"
        ;;
    placement) os_manage "$v/placement-manage" --config-file "$e/placement/placement.conf" db sync ;;
    glance) os_manage "$v/glance-manage" --config-file "$e/glance/glance-api.conf" db_sync ;;
    nova)
        local nm=("$v/nova-manage" --config-file "$e/nova/nova.conf")
        os_manage "${nm[@]}" api_db sync
        os_manage "${nm[@]}" cell_v2 map_cell0 --database_connection "$(os_db_url)nova_cell0?charset=utf8"
        os_manage "${nm[@]}" cell_v2 list_cells | grep -q ' cell1 ' ||
            os_manage "${nm[@]}" cell_v2 create_cell --name cell1
        os_manage "${nm[@]}" db sync
        ;;
    cinder) os_manage "$v/cinder-manage" --config-file "$e/cinder/cinder.conf" db sync ;;
    neutron)
        os_manage "$v/neutron-db-manage" --config-file "$e/neutron/neutron.conf" \
            --config-file "$e/neutron/ml2_conf.ini" upgrade heads
        ;;
    esac
}

# Run the DB syncs that are needed (new database, empty schema, or another venv).
os_dbsyncs() {
    local created=$1 tables svc db stamp need pids=() names=() i rc t0
    stamp=$(cat "$LAB_OS_VENV/.lab-stamp")
    tables=$(os_db_tables)
    declare -A svc_dbs=([keystone]=keystone [placement]=placement [glance]=glance
        [nova]="nova_api nova_cell0 nova" [cinder]=cinder [neutron]=neutron)
    t0=$(lab_now_us)
    for svc in keystone placement glance nova cinder neutron; do
        need=0
        [[ $(cat "$LAB_OS_RUN/dbsync-$svc.stamp" 2>/dev/null) == "$stamp" ]] || need=1
        for db in ${svc_dbs[$svc]}; do
            [[ " $created " == *" $db "* ]] && need=1
            awk -v d="$db" '$1 == d && $2 > 0 {f=1} END {exit !f}' <<<"$tables" || need=1
        done
        ((need)) || continue
        rm -f "$LAB_OS_RUN/dbsync-$svc.stamp"
        os_dbsync "$svc" >"$LAB_OS_LOG/dbsync-$svc.log" 2>&1 7>&- 9>&- &
        pids+=($!)
        names+=("$svc")
    done
    ((${#pids[@]})) || return 0
    os_log "database syncs: ${names[*]} (logs $LAB_OS_LOG/dbsync-*.log)"
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        ((rc == 0)) || die "openstack: the database sync of ${names[$i]} failed (rc $rc); see $LAB_OS_LOG/dbsync-${names[$i]}.log:
$(os_tail "$LAB_OS_LOG/dbsync-${names[$i]}.log" 4)"
        printf '%s\n' "$stamp" >"$LAB_OS_RUN/dbsync-${names[$i]}.stamp"
    done
    os_log "database syncs done after $(lab_elapsed "$t0")s"
}

# Soft-delete (deleted = id, as Nova's security_group_destroy does) all but the
# oldest live project-less 'default' security group of each cell database.
# Concurrent instance creates with a project-less admin context (os-onboard's
# adopt helper before it wrote with the owner's project) leave duplicates, on
# which every such create fails with a TypeError (MySQL's unique key lets NULLs
# repeat), and the databases outlive `lab down`. Idempotent.
os_repair_default_groups() {
    local db n
    for db in nova nova_cell0; do
        n=$(os_sql "UPDATE \`$db\`.security_groups SET deleted = id, deleted_at = NOW()
WHERE name = 'default' AND project_id IS NULL AND deleted = 0 AND id > (
    SELECT k.id FROM (SELECT MIN(id) AS id FROM \`$db\`.security_groups
    WHERE name = 'default' AND project_id IS NULL AND deleted = 0) AS k);
SELECT ROW_COUNT();") || die "openstack: repairing $db.security_groups failed: $n"
        [[ $n == 0 ]] ||
            os_log "$db: soft-deleted $n duplicate project-less 'default' security group(s)"
    done
}

# Environment of bootstrap.py.
os_bootstrap_env() {
    os_base_env
    OS_BOOT_ENV=("${OS_BASE_ENV[@]}" OS_CLIENT_CONFIG_FILE="$LAB_OS_CLOUDS_YAML"
        LAB_OS_REGION="$LAB_OPENSTACK_REGION" LAB_OS_KEYSTONE_URL="$LAB_OS_KEYSTONE_URL/v3"
        LAB_OS_API_HOST="$LAB_OS_HOST" LAB_OS_CLOUDS_YAML="$LAB_OS_CLOUDS_YAML"
        LAB_OS_ADMIN_PASSWORD="$(os_secret ADMIN)" LAB_OS_DEMO_PASSWORD="$(os_secret DEMO)"
        LAB_OS_SERVICE_PASSWORD="$(os_secret SERVICE)"
        LAB_OS_PROVIDER_NETWORK="$LAB_NETWORK" LAB_OS_PROVIDER_SUBNET="$LAB_NETWORK-v4"
        LAB_OS_NET_PREFIX="$LAB_NET_PREFIX" LAB_OS_PHYSNET="$LAB_OPENSTACK_PHYSNET" LAB_OS_BRIDGE="$LAB_BRIDGE"
        LAB_OS_CINDER_BACKEND="${1:-}")
}

# os_bootstrap PHASE [CINDER_BACKEND]: run bootstrap.py PHASE unless its stamp matches.
os_bootstrap() {
    local phase=$1 stamp logf=$LAB_OS_LOG/bootstrap.log t0
    os_bootstrap_env "${2:-}"
    stamp=$({ printf '%s\n' "${OS_BOOT_ENV[@]}"; cat "$LAB_OS_SRC/bootstrap.py"; } | sha256sum | cut -c1-16)
    if [[ $(cat "$LAB_OS_RUN/bootstrap-$phase.stamp" 2>/dev/null) == "$stamp" ]]; then
        [[ $phase != clouds ]] || grep -q '^  lab-admin:' "$LAB_OS_CLOUDS_YAML" 2>/dev/null && return 0
    fi
    t0=$(lab_now_us)
    env -i "${OS_BOOT_ENV[@]}" "$LAB_OS_VENV/bin/python" "$LAB_OS_SRC/bootstrap.py" "$phase" >>"$logf" 2>&1 7>&- 9>&- ||
        die "openstack: bootstrap.py $phase failed; see $logf:
$(os_tail "$logf" 4)"
    printf '%s\n' "$stamp" >"$LAB_OS_RUN/bootstrap-$phase.stamp"
    os_log "bootstrap $phase done in $(lab_elapsed "$t0")s"
}

# --- public functions ---------------------------------------------------------------------

# openstack_compute_start a|b [--soft]: start nova-compute of that host when it
# is safe (see the header) and wait until it reports. --soft: when it is not
# safe, only record why (for openstack_status) and return 0.
openstack_compute_start() {
    local h=${1:?host a or b} soft=${2:-} name locked=0
    name=nova-compute-$h
    [[ " ${LAB_OS_COMPUTE_HOSTS[*]} " == *" $h "* ]] || die "openstack: no lab host '$h' (a or b)"
    if [[ -z ${OS_IN_UP:-} ]]; then
        os_dirs
        os_lock
        locked=1
    fi
    # Rendered even when it must not start yet: prepare-host needs its host
    # name, state_path and config (openstack_env prints them).
    os_compute_render "$h" 2>/dev/null || true
    if ! os_compute_safe "$h"; then
        printf '%s\n' "$OS_COMPUTE_WHY" >"$LAB_OS_RUN/$name.skipped"
        ((locked)) && os_unlock
        if [[ $soft == --soft ]]; then
            os_log "$name not started: $OS_COMPUTE_WHY"
            return 0
        fi
        die "openstack: $name not started: $OS_COMPUTE_WHY"
    fi
    rm -f "$LAB_OS_RUN/$name.skipped"
    os_compute_render "$h" || die "openstack: cannot read host ${h^^}'s hostname from $(os_compute_uri "$h")"
    [[ -n ${OS_IN_UP:-} ]] || OS_PENDING=() OS_RUNNING=()
    os_service_start "$name"
    if [[ -z ${OS_IN_UP:-} ]]; then
        os_wait_pending
        os_unlock
    fi
}

# openstack_service_stop|start NAME: one service, e.g. for an API outage in a
# fault test (start waits until it is healthy again).
openstack_service_stop() {
    os_dirs
    os_lock
    os_service_def "$1" # dies on an unknown name
    os_service_stop "$1"
    os_unlock
}

openstack_service_start() {
    os_dirs
    os_lock
    OS_PENDING=() OS_RUNNING=()
    os_service_start "$1"
    os_wait_pending
    os_unlock
}

openstack_up() {
    local t0 created name h
    t0=$(lab_now_us)
    os_dirs
    os_lock
    OS_IN_UP=1 OS_PENDING=() OS_RUNNING=()
    packages_ensure "${LAB_OS_PACKAGES[@]}"
    os_venv_ensure
    os_mariadb_up
    os_rabbitmq_up
    os_render
    created=$(os_databases_ensure | paste -sd' ')
    if [[ " $created " == *" keystone "* ]]; then
        rm -f "$LAB_OS_RUN"/bootstrap-*.stamp
    fi
    [[ -n $created ]] && os_log "created databases: $created"
    os_dbsyncs "$created"
    os_repair_default_groups
    os_bootstrap clouds
    # Keystone (and the other APIs, which need nothing at start) first; the
    # workers check their credentials at start, so they wait for the catalog.
    for name in "${LAB_OS_APIS[@]}"; do
        os_service_start "$name"
    done
    OS_PENDING_APIS=("${OS_PENDING[@]}")
    if [[ " ${OS_PENDING[*]} " == *" keystone "* ]]; then
        OS_PENDING=(keystone)
        os_wait_pending
    fi
    os_bootstrap catalog
    OS_PENDING=()
    for name in "${OS_PENDING_APIS[@]}"; do
        [[ $name == keystone ]] || OS_PENDING+=("$name")
    done
    for name in "${LAB_OS_WORKERS[@]}"; do
        if [[ $name == cinder-volume ]] && ! grep -q "^enabled_backends = $LAB_OS_CINDER_BACKEND" "$LAB_OS_ETC/cinder/cinder.conf"; then
            printf '%s\n' "$OS_CEPH_WHY" >"$LAB_OS_RUN/cinder-volume.skipped"
            os_log "cinder-volume not started: $OS_CEPH_WHY"
            os_pid cinder-volume >/dev/null && os_service_stop cinder-volume
            continue
        fi
        rm -f "$LAB_OS_RUN/$name.skipped"
        os_service_start "$name"
    done
    for h in "${LAB_OS_COMPUTE_HOSTS[@]}"; do
        openstack_compute_start "$h" --soft
    done
    if declare -F vcenter_computes_start >/dev/null; then vcenter_computes_start; fi # lib/vcenter.sh
    os_wait_pending
    if [[ -e $LAB_OS_RUN/cinder-volume.skipped ]]; then
        os_bootstrap resources
    else
        # The volume types: one per backend (ceph-legacy, vmdk).
        os_bootstrap resources "$(os_cinder_backends)"
    fi
    # lib/vcenter.sh: aggregate/AZ, image, flavor and network of the VMware computes.
    if declare -F vcenter_bootstrap >/dev/null; then vcenter_bootstrap; fi
    unset OS_IN_UP
    os_unlock
    os_log "up after $(lab_elapsed "$t0")s (${#OS_RUNNING[@]} services were already running; logs in $LAB_OS_LOG)"
}

openstack_down() {
    local name pid
    [[ -d $LAB_OS_DIR ]] || return 0
    os_lock
    os_services_stop
    for name in rabbitmq epmd mariadb; do
        if pid=$(os_pid "$name"); then
            stop_pid "openstack $name" "$pid" 60
        fi
        rm -f "$LAB_OS_RUN/$name.pid"
    done
    os_unlock
}

# openstack_purge: stop everything and drop the OpenStack state (databases,
# rendered configs, service data incl. compute_id files, rabbitmq mnesia,
# stamps) so that the next openstack_up is a cold one. Keeps the venv and the
# passwords. Needs MariaDB: starts it if it is not running.
openstack_purge() {
    local db sql='' pid
    os_dirs
    openstack_down
    os_lock
    os_mariadb_up
    for db in "${LAB_OS_DBS[@]}"; do
        sql+="DROP DATABASE IF EXISTS \`$db\`;"
    done
    os_sql "$sql" >/dev/null || die "openstack: dropping the databases failed"
    if pid=$(os_pid mariadb); then
        stop_pid "openstack mariadb" "$pid" 60
    fi
    rm -rf "$LAB_OS_DATA" "$LAB_OS_ETC" "$LAB_OS_RUN"
    os_unlock
    os_log "purged: databases ${LAB_OS_DBS[*]}, $LAB_OS_DATA, $LAB_OS_ETC, $LAB_OS_RUN (kept the venv and $LAB_OS_DIR/secrets)"
}

# One status block; returns 1 when a service that should run does not.
openstack_status() {
    local rc=0 name pid why check line db binary host seen
    echo "openstack (2025.1; venv $LAB_OS_VENV, logs $LAB_OS_LOG):"
    if [[ ! -x $LAB_OS_VENV/bin/python ]]; then
        echo "  NOT INSTALLED (openstack_up installs it)"
        return 1
    fi
    for name in mariadb rabbitmq; do
        if pid=$(os_pid "$name"); then
            printf '  %-17s pid %-7s alive   log %s\n' "$name" "$pid" "$LAB_OS_LOG/$name.log"
        elif [[ $name == mariadb ]] && os_mysql_ping; then
            printf '  %-17s running (not started by the lab)\n' "$name"
        elif [[ $name == rabbitmq ]] && os_port_open 5672; then
            printf '  %-17s running (not started by the lab)\n' "$name"
        else
            printf '  %-17s NOT RUNNING     log %s\n' "$name" "$LAB_OS_LOG/$name.log"
            rc=1
        fi
    done
    for name in $(os_all_services); do
        if [[ -s $LAB_OS_RUN/$name.skipped ]] && ! os_pid "$name" >/dev/null; then
            why=$(cat "$LAB_OS_RUN/$name.skipped")
            if [[ $name == nova-compute-? ]]; then
                os_compute_safe "${name#nova-compute-}" || why=$OS_COMPUTE_WHY
                printf '  %-17s NOT STARTED: %s\n' "$name" "$why"
                [[ $why == *prepare-host* ]] &&
                    printf '  %-17s (after that: lab/lab compute-start %s)\n' '' "${name#nova-compute-}"
            else
                printf '  %-17s NOT STARTED: %s\n' "$name" "$why"
            fi
            continue
        fi
        if ! pid=$(os_pid "$name"); then
            printf '  %-17s NOT RUNNING     log %s\n' "$name" "$LAB_OS_LOG/$name.log"
            rc=1
            continue
        fi
        line=$(printf '  %-17s pid %-7s alive   log %s' "$name" "$pid" "$LAB_OS_LOG/$name.log")
        os_service_def "$name"
        check=$OS_CHECK
        case $check in
        http:*)
            if os_service_healthy "$name"; then
                line+="  (http :${check#http:} answers)"
            else
                line+="  (http :${check#http:} NOT ANSWERING)"
                rc=1
            fi
            ;;
        service:* | compute:*)
            if [[ $check == compute:* ]]; then
                db=nova binary=nova-compute host=${check#compute:}
            else
                IFS=: read -r _ db binary host <<<"$check"
            fi
            seen=$(os_service_seen "$db" "$binary" "$host")
            if [[ -n $seen ]] && (($(date -u +%s) - seen <= 60)); then
                line+="  ($binary $host reports: up)"
            else
                line+="  ($binary $host reports: DOWN)"
                rc=1
            fi
            ;;
        esac
        printf '%s\n' "$line"
    done
    return "$rc"
}

# openstack_env [PREFIX]: shell assignments for tests and tools (PREFIX e.g. "export ").
openstack_env() {
    local prefix=${1:-} k h
    local -A v=(
        [OS_CLOUD]=lab-admin
        [OS_CLIENT_CONFIG_FILE]=$LAB_OS_CLOUDS_YAML
        [LAB_OPENSTACK_VENV]=$LAB_OS_VENV
        [LAB_OPENSTACK_BIN]=$LAB_OS_VENV/bin
        [LAB_OPENSTACK_ETC]=$LAB_OS_ETC
        [LAB_OPENSTACK_LOG_DIR]=$LAB_OS_LOG
        [LAB_OPENSTACK_KEYSTONE_URL]=$LAB_OS_KEYSTONE_URL/v3
        [LAB_OPENSTACK_CLOUD]=lab
        [LAB_OPENSTACK_ADMIN_CLOUD]=lab-admin
        [LAB_OPENSTACK_PHYSNET]=$LAB_OPENSTACK_PHYSNET
        [LAB_OPENSTACK_PROVIDER_NETWORK]=$LAB_NETWORK
        [LAB_OPENSTACK_PROVIDER_SUBNET]=$LAB_NETWORK-v4
        [LAB_NOVA_MANAGE]="$LAB_OS_VENV/bin/nova-manage --config-file $LAB_OS_ETC/nova/nova.conf"
        [LAB_NOVA_CONF]=$LAB_OS_ETC/nova/nova.conf
        [LAB_NOVA_INSTANCES_PATH]=$LAB_OS_DATA/nova/instances
        [LAB_CINDER_MANAGE]="$LAB_OS_VENV/bin/cinder-manage --config-file $LAB_OS_ETC/cinder/cinder.conf"
        [LAB_CINDER_BACKEND]=$LAB_OS_CINDER_BACKEND
        [LAB_CINDER_BACKEND_HOST]=$LAB_OS_CINDER_HOST@$LAB_OS_CINDER_BACKEND#$LAB_OS_CINDER_BACKEND
        # os-onboard's service-side helpers (extras/nova, extras/cinder) run with these.
        [OS_ONBOARD_NOVA_PYTHON]=$LAB_OS_VENV/bin/python
        [OS_ONBOARD_NOVA_CONFIG]=$LAB_OS_ETC/nova/nova.conf
        [OS_ONBOARD_CINDER_PYTHON]=$LAB_OS_VENV/bin/python
        [OS_ONBOARD_CINDER_CONFIG]=$LAB_OS_ETC/cinder/cinder.conf
    )
    for k in OS_CLOUD OS_CLIENT_CONFIG_FILE LAB_OPENSTACK_VENV LAB_OPENSTACK_BIN LAB_OPENSTACK_ETC \
        LAB_OPENSTACK_LOG_DIR LAB_OPENSTACK_KEYSTONE_URL LAB_OPENSTACK_CLOUD LAB_OPENSTACK_ADMIN_CLOUD \
        LAB_OPENSTACK_PHYSNET LAB_OPENSTACK_PROVIDER_NETWORK LAB_OPENSTACK_PROVIDER_SUBNET \
        LAB_NOVA_MANAGE LAB_NOVA_CONF LAB_NOVA_INSTANCES_PATH LAB_CINDER_MANAGE LAB_CINDER_BACKEND \
        LAB_CINDER_BACKEND_HOST OS_ONBOARD_NOVA_PYTHON OS_ONBOARD_NOVA_CONFIG OS_ONBOARD_CINDER_PYTHON \
        OS_ONBOARD_CINDER_CONFIG; do
        printf '%s%s=%s\n' "$prefix" "$k" "$(shell_quote "${v[$k]}")"
    done
    # With --export the shell gets the lab's `openstack` client too (python-openstackclient lives in
    # the OpenStack venv, not in os-onboard's): appended, so nothing already on PATH is shadowed.
    if [[ $prefix == 'export ' && :$PATH: != *:$LAB_OS_VENV/bin:* ]]; then
        printf 'export PATH=%s\n' "$(shell_quote "$PATH:$LAB_OS_VENV/bin")"
    fi
    # Cinder's VMDK backend (on the vSphere simulator), when cinder.conf has it:
    # its volume type and backend host.
    if [[ ,$(os_cinder_backends), == *,$LAB_OS_CINDER_VMDK_BACKEND,* ]]; then
        printf '%sLAB_CINDER_VMDK_TYPE=%s\n' "$prefix" "$LAB_OS_CINDER_VMDK_BACKEND"
        printf '%sLAB_CINDER_VMDK_BACKEND_HOST=%s\n' "$prefix" \
            "$(shell_quote "$LAB_OS_CINDER_HOST@$LAB_OS_CINDER_VMDK_BACKEND#$LAB_OS_CINDER_VMDK_BACKEND")"
    fi
    # Per hypervisor host: the nova-compute host name, its config and state_path
    # (<state_path>/compute_id is what `os-onboard prepare-host` writes).
    for h in "${LAB_OS_COMPUTE_HOSTS[@]}"; do
        printf '%sLAB_NOVA_HOST_%s=%s\n' "$prefix" "${h^^}" \
            "$(shell_quote "$(cat "$LAB_OS_RUN/compute-$h.hostname" 2>/dev/null)")"
        printf '%sLAB_NOVA_COMPUTE_CONF_%s=%s\n' "$prefix" "${h^^}" "$(shell_quote "$(os_compute_conf "$h")")"
        printf '%sLAB_NOVA_STATE_PATH_%s=%s\n' "$prefix" "${h^^}" "$(shell_quote "$(os_compute_state "$h")")"
    done
}
