# shellcheck shell=bash
# The lab's Horizon (issue 16): the 2025.1 ("Epoxy") dashboard, horizon 25.3.x
# from PyPI, logging in through the lab's Keystone, with os-onboard's
# Onboarding panels (extras/horizon, package os_onboard_dashboard).
#
# Its own venv ($LAB_STATE_DIR/horizon/venv), installed with the lab's
# OpenStack constraints (lab/openstack/constraints.txt), so the libraries it
# shares with the services (keystoneauth1, the clients, oslo.*) are the same
# versions; not in the services' venv, whose rebuild (on any change of
# requirements.in) stops every OpenStack service. Rebuilt only when the
# constraints, the Horizon pin or Python change (hash stamp); the plugin is
# reinstalled when extras/horizon changes, then collectstatic + compress run
# again (COMPRESS_OFFLINE: the pages need no compression at request time).
#
# Served by gunicorn (2 sync workers, the memory budget is ~300 MiB; Django is
# imported once in the master with --preload and shared by fork), static files by
# WhiteNoise inside the app (no web server in front), sessions in files under
# $LAB_HORIZON_DIR/sessions (shared by both workers; no memcached in the lab).
# local_settings.py is written here: Keystone, the os-onboard API URL
# (ONBOARD_API_URL, lib/serve.sh) and the panels' default mapping.
#
# pidfile $LAB_HORIZON_DIR/run/horizon.pid ("pid starttime"), log
# $LAB_LOG_DIR/horizon.log. `lab/lab env` gives LAB_HORIZON_URL,
# LAB_HORIZON_USER and LAB_HORIZON_PASSWORD (the lab's admin).
#
# Settings: LAB_HORIZON_PORT (8088).

: "${LAB_HORIZON_PORT:=8088}"
LAB_HORIZON_DIR=$LAB_STATE_DIR/horizon
LAB_HORIZON_VENV=$LAB_HORIZON_DIR/venv
LAB_HORIZON_PIDFILE=$LAB_HORIZON_DIR/run/horizon.pid
LAB_HORIZON_LOG=$LAB_LOG_DIR/horizon.log
LAB_HORIZON_PLUGIN=${LAB_DIR%/lab}/extras/horizon
# The Horizon series of OpenStack 2025.1, and what serves it. The XStatic
# packages are not in constraints.txt; Font Awesome 6 (the newest) has no
# font-awesome.scss, which Horizon 25's SCSS imports: 2025.1's
# upper-constraints has 4.7.0.0.
LAB_HORIZON_REQS=('horizon>=25.3,<25.4' 'XStatic-Font-Awesome>=4.7,<5' gunicorn 'whitenoise>=6,<7')
# The browser of the UI tests (tests/ui): Debian's Chromium, driven by Playwright.
LAB_HORIZON_PACKAGES=(chromium fonts-dejavu-core)

horizon_url() { printf 'http://127.0.0.1:%s/' "$LAB_HORIZON_PORT"; }

horizon_site() { "$LAB_HORIZON_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }

horizon_pid() {
    local pid start
    [[ -s $LAB_HORIZON_PIDFILE ]] || return 1
    read -r pid start <"$LAB_HORIZON_PIDFILE" || true
    pid_alive "$pid" || return 1
    [[ -z $start || $(os_starttime "$pid") == "$start" ]] || return 1
    printf '%s' "$pid"
}

# The login page answers 200 (a redirect to it counts as up too).
horizon_healthy() {
    local code
    code=$(os_http_code "$(horizon_url)auth/login/")
    [[ $code == 200 ]]
}

horizon_venv_stamp() {
    { cat "$LAB_OS_SRC/constraints.txt"; printf '%s\n' "${LAB_HORIZON_REQS[@]}"; os_python_version; } |
        sha256sum | cut -c1-16
}

horizon_plugin_stamp() {
    (cd "$LAB_HORIZON_PLUGIN" && find . -type f ! -path '*/__pycache__/*' ! -path '*.egg-info*' ! -path './build/*' |
        LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}

horizon_venv_ensure() {
    local stamp t0 logf=$LAB_HORIZON_DIR/install.log
    stamp=$(horizon_venv_stamp)
    [[ -x $LAB_HORIZON_VENV/bin/python && $(cat "$LAB_HORIZON_VENV/.lab-stamp" 2>/dev/null) == "$stamp" ]] &&
        return 0
    t0=$(lab_now_us)
    log "horizon: installing the venv $LAB_HORIZON_VENV (${LAB_HORIZON_REQS[*]}; log $logf)"
    horizon_down
    rm -rf "$LAB_HORIZON_VENV"
    "$LAB_OPENSTACK_PYTHON" -m venv "$LAB_HORIZON_VENV" >>"$logf" 2>&1 || die "horizon: venv failed; see $logf"
    "$LAB_HORIZON_VENV/bin/pip" install --no-input -c "$LAB_OS_SRC/constraints.txt" "${LAB_HORIZON_REQS[@]}" \
        >>"$logf" 2>&1 || die "horizon: pip install failed; see $logf"
    rm -f "$LAB_HORIZON_VENV/.lab-plugin-stamp"
    printf '%s\n' "$stamp" >"$LAB_HORIZON_VENV/.lab-stamp"
    log "horizon: venv installed in $(lab_elapsed "$t0")s ($(du -sm "$LAB_HORIZON_VENV" | cut -f1) MB)"
}

# local_settings.py (and a snippet that puts WhiteNoise in front), the secret key.
horizon_render() {
    local site local_dir
    site=$(horizon_site)
    local_dir=$site/openstack_dashboard/local
    mkdir -p "$LAB_HORIZON_DIR/sessions" "$local_dir/local_settings.d"
    chmod 0700 "$LAB_HORIZON_DIR/sessions"
    [[ -s $LAB_HORIZON_DIR/secret_key ]] ||
        (umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$LAB_HORIZON_DIR/secret_key")
    os_write "$local_dir/local_settings.py" <<PY
# The lab's Horizon (written by lab/lib/horizon.sh; changes are overwritten).
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
with open("$LAB_HORIZON_DIR/secret_key") as _f:
    SECRET_KEY = _f.read().strip()
OPENSTACK_HOST = "127.0.0.1"
OPENSTACK_KEYSTONE_URL = "$LAB_OS_KEYSTONE_URL/v3"
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_SSL_NO_VERIFY = True
TIME_ZONE = "UTC"
# The lab's Neutron has no L3 plugin (no routers, no floating IPs): without
# this, Project > Instances asks for floating IPs and shows "Unable to
# connect to Neutron".
OPENSTACK_NEUTRON_NETWORK = {"enable_router": False, "enable_quotas": False,
                             "enable_distributed_router": False, "enable_ha_router": False,
                             "enable_fip_topology_check": False}
# No memcached in the lab: sessions in files (both gunicorn workers see them).
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = "$LAB_HORIZON_DIR/sessions"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STATIC_ROOT = "$LAB_HORIZON_DIR/static"
COMPRESS_OFFLINE = True
COMPRESS_ENABLED = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
# os-onboard's Onboarding panels (extras/horizon): the API they call with the
# user's token, and the mapping the Plan form starts from.
ONBOARD_API_URL = "$(serve_url)"
ONBOARD_API_TIMEOUT = 30
ONBOARD_DEFAULT_MAPPING = """$(horizon_default_mapping)"""
PY
    os_write "$local_dir/local_settings.d/_90_os_onboard_lab.py" <<'PY'
# Static files from the app itself (no web server in front of gunicorn).
MIDDLEWARE = ("whitenoise.middleware.WhiteNoiseMiddleware",) + tuple(MIDDLEWARE)  # noqa: F821
PY
}

# The Plan form's starting mapping: the vCenter simulator's port group onto
# its Neutron network (lib/vcenter.sh), VMs owned by admin.
horizon_default_mapping() {
    cat <<JSON
{"owners": [{"match": {"name": "*"}, "project": "admin", "user": "admin"}],
 "networks": [{"match": {"network": "${LAB_VC_PORT_GROUP:-DC0_DVPG0}"}, "neutron_network": "${LAB_VC_NETWORK:-vc-net}"}],
 "flavors": {"policy": "reuse-or-create", "prefix": "adopted"},
 "local_disks": "block"}
JSON
}

# The plugin, its enabled files, and the static files (collected + compressed).
horizon_plugin_ensure() {
    local stamp t0 logf=$LAB_HORIZON_DIR/install.log site f manage
    stamp=$(horizon_plugin_stamp)-$(sha256sum <"$(horizon_site)/openstack_dashboard/local/local_settings.py" | cut -c1-8)
    [[ $(cat "$LAB_HORIZON_VENV/.lab-plugin-stamp" 2>/dev/null) == "$stamp" ]] && return 0
    t0=$(lab_now_us)
    site=$(horizon_site)
    "$LAB_HORIZON_VENV/bin/pip" install --no-input --no-deps --no-build-isolation --force-reinstall \
        "$LAB_HORIZON_PLUGIN" >>"$logf" 2>&1 || die "horizon: installing $LAB_HORIZON_PLUGIN failed; see $logf"
    rm -rf "$LAB_HORIZON_PLUGIN/build" "$LAB_HORIZON_PLUGIN"/*.egg-info
    rm -f "$site"/openstack_dashboard/local/enabled/_90[0-9][0-9]_onboard_*.py
    for f in "$site"/os_onboard_dashboard/enabled/_90*.py; do
        cp "$f" "$site/openstack_dashboard/local/enabled/"
    done
    manage=("$LAB_HORIZON_VENV/bin/python" -m django)
    env -i PATH="$LAB_HORIZON_VENV/bin:/usr/bin:/bin" HOME=/root LANG=C.UTF-8 \
        DJANGO_SETTINGS_MODULE=openstack_dashboard.settings "${manage[@]}" collectstatic --noinput --clear \
        >>"$logf" 2>&1 || die "horizon: collectstatic failed; see $logf"
    env -i PATH="$LAB_HORIZON_VENV/bin:/usr/bin:/bin" HOME=/root LANG=C.UTF-8 \
        DJANGO_SETTINGS_MODULE=openstack_dashboard.settings "${manage[@]}" compress --force \
        >>"$logf" 2>&1 || die "horizon: compress failed; see $logf"
    printf '%s\n' "$stamp" >"$LAB_HORIZON_VENV/.lab-plugin-stamp"
    log "horizon: plugin extras/horizon installed, static files collected and compressed in $(lab_elapsed "$t0")s"
}

horizon_cmd() {
    # PYTHONWARNINGS: oslo.policy's scope-check UserWarning, several per page, buried the log.
    HORIZON_ENV=(PATH="$LAB_HORIZON_VENV/bin:/usr/bin:/bin" HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1
        PYTHONWARNINGS=ignore::UserWarning DJANGO_SETTINGS_MODULE=openstack_dashboard.settings)
    HORIZON_CMD=("$LAB_HORIZON_VENV/bin/gunicorn" --name lab-horizon
        --bind "127.0.0.1:$LAB_HORIZON_PORT" --workers 2 --preload --timeout 120
        --graceful-timeout 5 openstack_dashboard.wsgi:application)
}

horizon_up() {
    local pid hash t0
    mkdir -p "$LAB_HORIZON_DIR/run"
    packages_ensure "${LAB_HORIZON_PACKAGES[@]}"
    horizon_venv_ensure
    horizon_render
    horizon_plugin_ensure
    horizon_cmd
    hash=$({ printf '%s\n' "${HORIZON_CMD[@]}" "${HORIZON_ENV[@]}"; cat "$LAB_HORIZON_VENV/.lab-stamp" "$LAB_HORIZON_VENV/.lab-plugin-stamp"; } |
        sha256sum | cut -c1-16)
    if pid=$(horizon_pid); then
        if [[ $(cat "$LAB_HORIZON_DIR/run/horizon.hash" 2>/dev/null) == "$hash" ]] && horizon_healthy; then
            log "horizon: already running (pid $pid, $(horizon_url))"
            return 0
        fi
        log "horizon: configuration or plugin changed; restarting it"
        horizon_down
    fi
    t0=$(lab_now_us)
    printf '\n==== %s lab: starting horizon ====\n' "$(date '+%F %T')" >>"$LAB_HORIZON_LOG"
    env -i "${HORIZON_ENV[@]}" setsid nohup "${HORIZON_CMD[@]}" </dev/null >>"$LAB_HORIZON_LOG" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    printf '%s %s\n' "$pid" "$(os_starttime "$pid")" >"$LAB_HORIZON_PIDFILE"
    printf '%s\n' "$hash" >"$LAB_HORIZON_DIR/run/horizon.hash"
    while ! horizon_healthy; do
        pid_alive "$pid" || die "horizon: exited; see $LAB_HORIZON_LOG: $(tail -n 3 "$LAB_HORIZON_LOG" | tr '\n' ' ')"
        (($(lab_now_us) - t0 > 90000000)) && die "horizon: no login page at $(horizon_url) after 90 s; see $LAB_HORIZON_LOG"
        sleep 0.3
    done
    log "horizon: $(horizon_url) answers after $(lab_elapsed "$t0")s (pid $pid, log $LAB_HORIZON_LOG)"
}

horizon_down() {
    local pid left
    if pid=$(horizon_pid); then
        stop_pid horizon "$pid" 20
        left=$(os_session_pids "$pid" | paste -sd' ')
        # shellcheck disable=SC2086 # a list of pids
        [[ -z $left ]] || kill -KILL $left 2>/dev/null || true
    fi
    rm -f "$LAB_HORIZON_PIDFILE" "$LAB_HORIZON_DIR/run/horizon.hash"
}

# One status block; returns 1 when Horizon is not running or its login page does not answer.
horizon_status() {
    local pid rss
    echo "horizon ($(horizon_url)):"
    if ! pid=$(horizon_pid); then
        printf '  %-9s NOT RUNNING     log %s\n' horizon "$LAB_HORIZON_LOG"
        return 1
    fi
    # The master and its workers (one session): their resident memory together.
    rss=$(ps -o rss= -s "$pid" 2>/dev/null | awk '{s += $1} END {printf "%d", s / 1024}')
    if horizon_healthy; then
        printf '  %-9s pid %-7s alive   login page answers   %s MiB   log %s\n' horizon "$pid" "$rss" "$LAB_HORIZON_LOG"
    else
        printf '  %-9s pid %-7s alive   login page NOT ANSWERING   log %s\n' horizon "$pid" "$LAB_HORIZON_LOG"
        return 1
    fi
}

horizon_env() {
    local prefix=${1:-}
    printf '%sLAB_HORIZON_URL=%s\n' "$prefix" "$(shell_quote "$(horizon_url)")"
    printf '%sLAB_HORIZON_USER=admin\n' "$prefix"
    printf '%sLAB_HORIZON_PASSWORD=%s\n' "$prefix" "$(shell_quote "$(os_secret ADMIN)")"
    printf '%sLAB_HORIZON_PYTHON=%s\n' "$prefix" "$(shell_quote "$LAB_HORIZON_VENV/bin/python")"
}
