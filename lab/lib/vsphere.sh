# shellcheck shell=bash
# The lab's vSphere half: a vSphere API simulator (govmomi's simulator package).
#
# Debian's golang-github-vmware-govmomi-dev has the simulator package but no
# vcsim command; lab/vsphere/ is a small main for it plus what OpenStack's
# VMware drivers need and 0.24 lacks (lab/vsphere/README.md), built with
# Debian's golang-go in GOPATH mode (no module download: nothing but apt is
# reachable). It serves plain http on 127.0.0.1 (pyVmomi: ?scheme=http) and
# the same simulator over https on LAB_VSPHERE_HTTPS_PORT (oslo.vmware: Nova,
# Cinder), with the WSDL oslo.vmware loads (generated at build time).
# Layout under $LAB_STATE_DIR/vsphere:
#   vcsim-lab, build.stamp   the binary and what it was built from
#   wsdlgen, wsdl/           the WSDL generator and its output (served at /sdk/*.wsdl)
#   cert.pem                 the https listener's self-signed certificate
#   gocache/                 Go build cache (~16 s cold build, seconds warm)
#   password                 the simulator's password (0600, made once)
#   run/vcsim.pid, run.args  pidfile and the arguments it runs with
#   estate.json              the VMs made through the API (Nova's, Cinder's),
#                            re-created at start (-state-file); kept by down
#   datastores/              the datastores' files (-datastore-dir); kept by down
#   tmp/                     the simulator's temporary files (removed by down)
# `lab/lab down --purge` forgets estate.json and datastores/ (vsphere_purge).
# Log: $LAB_LOG_DIR/vsphere.log ("READY <url>" once it serves).
#
# Settings: LAB_VSPHERE_ADDR (127.0.0.1), LAB_VSPHERE_PORT (18989),
# LAB_VSPHERE_HTTPS_PORT (18443), LAB_VSPHERE_USER (onboard),
# LAB_VSPHERE_MODEL (simulator flags: model size), LAB_VSPHERE_LEGACY (3: the
# legacy VMs legacy-vc-01.. made through the API, lab/vsphere/legacy.go, with
# guest addresses LAB_VC_CIDR's .201.. outside Neutron's allocation pool).

: "${LAB_VSPHERE_ADDR:=127.0.0.1}"
: "${LAB_VSPHERE_PORT:=18989}"
: "${LAB_VSPHERE_HTTPS_PORT:=18443}"
: "${LAB_VSPHERE_USER:=onboard}"
# 2 clusters of 2 hosts (one nova-compute each, lib/vcenter.sh) + 2 standalone
# hosts, 4 VMs per cluster and per standalone host = 16 VMs; 3 of them with an
# RDM of a SAN LUN, a thick disk and guest IPs; 1 pair sharing an
# instanceUuid. (All VMs of one host share a MAC in govmomi 0.24: conflicts.)
# -esx-endpoints: hosts named 127.0.1.N, each serving datastore uploads (Nova's
# image upload goes to an ESX host by its name).
: "${LAB_VSPHERE_MODEL:=-clusters 2 -cluster-hosts 2 -standalone 2 -vms 4 -extras 3 -dup-uuid 1 -esx-endpoints}"
: "${LAB_VSPHERE_LEGACY:=3}"
LAB_VSPHERE_DIR=$LAB_STATE_DIR/vsphere
LAB_VSPHERE_BIN=$LAB_VSPHERE_DIR/vcsim-lab
LAB_VSPHERE_CERT=$LAB_VSPHERE_DIR/cert.pem
LAB_VSPHERE_GOVMOMI_TYPES=/usr/share/gocode/src/github.com/vmware/govmomi/vim25/types
LAB_VSPHERE_PIDFILE=$LAB_VSPHERE_DIR/run/vcsim.pid
LAB_VSPHERE_LOG=$LAB_LOG_DIR/vsphere.log
LAB_VSPHERE_ESTATE=$LAB_VSPHERE_DIR/estate.json
LAB_VSPHERE_PACKAGES=(golang-go golang-github-vmware-govmomi-dev)

vsphere_uri() {
    printf 'vsphere://%s@%s:%s/?scheme=http' "$LAB_VSPHERE_USER" "$LAB_VSPHERE_ADDR" "$LAB_VSPHERE_PORT"
}

# The password, made once (random) and kept 0600; never on a command line.
vsphere_password() {
    local f=$LAB_VSPHERE_DIR/password
    if [[ ! -s $f ]]; then
        mkdir -p "$LAB_VSPHERE_DIR"
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
    fi
    cat "$f"
}

# What the binary and the WSDL are built from: lab/vsphere's Go sources and
# the Go/govmomi package versions.
vsphere_build_stamp() {
    {
        (cd "$LAB_DIR/vsphere" && find . -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 sha256sum)
        dpkg-query -W -f='${Package} ${Version}\n' "${LAB_VSPHERE_PACKAGES[@]}" 2>/dev/null
    } | sha256sum | cut -d' ' -f1
}

# Build the simulator and generate its WSDL unless both match their sources.
vsphere_build() {
    local stamp t0 f
    stamp=$(vsphere_build_stamp)
    if [[ -x $LAB_VSPHERE_BIN && -s $LAB_VSPHERE_DIR/wsdl/vim.wsdl && -s $LAB_VSPHERE_DIR/wsdl/vimService.wsdl &&
        $(cat "$LAB_VSPHERE_DIR/build.stamp" 2>/dev/null) == "$stamp" ]]; then
        return 0
    fi
    mkdir -p "$LAB_VSPHERE_DIR/gocache"
    t0=$(lab_now_us)
    log "vsphere: building the simulator from lab/vsphere (GOPATH mode, Debian's govmomi)"
    # GOPATH mode builds a directory outside GOPATH only as "." (no absolute import paths).
    for f in vcsim-lab:. wsdlgen:wsdlgen; do
        (cd "$LAB_DIR/vsphere/${f#*:}" &&
            GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$LAB_VSPHERE_DIR/gocache GOFLAGS= \
                go build -o "$LAB_VSPHERE_DIR/${f%%:*}.new" .) >>"$LAB_VSPHERE_LOG" 2>&1 ||
            die "vsphere: go build of lab/vsphere/${f#*:} failed; see $LAB_VSPHERE_LOG"
    done
    "$LAB_VSPHERE_DIR/wsdlgen.new" -types "$LAB_VSPHERE_GOVMOMI_TYPES" -out "$LAB_VSPHERE_DIR/wsdl" >>"$LAB_VSPHERE_LOG" 2>&1 ||
        die "vsphere: generating the WSDL failed; see $LAB_VSPHERE_LOG"
    mv -f "$LAB_VSPHERE_DIR/wsdlgen.new" "$LAB_VSPHERE_DIR/wsdlgen"
    mv -f "$LAB_VSPHERE_BIN.new" "$LAB_VSPHERE_BIN"
    printf '%s\n' "$stamp" >"$LAB_VSPHERE_DIR/build.stamp"
    log "vsphere: built $LAB_VSPHERE_BIN in $(lab_elapsed "$t0")s"
}

# The arguments the simulator runs with (a change restarts it).
vsphere_args() {
    printf '%s\n' "-listen $LAB_VSPHERE_ADDR:$LAB_VSPHERE_PORT -https-listen $LAB_VSPHERE_ADDR:$LAB_VSPHERE_HTTPS_PORT -username $LAB_VSPHERE_USER -state-file $LAB_VSPHERE_ESTATE -datastore-dir $LAB_VSPHERE_DIR/datastores $LAB_VSPHERE_MODEL $(vsphere_legacy_flags) $(sha256sum "$LAB_VSPHERE_BIN" | cut -c1-16)"
}

# The legacy VMs' flags: how many, and their addresses' prefix (LAB_VC_CIDR's /24).
vsphere_legacy_flags() {
    local cidr=${LAB_VC_CIDR:-10.99.0.0/24}
    printf '%s\n' "-legacy-vms $LAB_VSPHERE_LEGACY -legacy-ip-prefix ${cidr%.*/*}."
}

# vsphere_wait_ready PID LOG_OFFSET TIMEOUT: wait for the READY line it prints.
vsphere_wait_ready() {
    local pid=$1 offset=$2 timeout=$3 t0
    t0=$(lab_now_us)
    while :; do
        if tail -c +"$((offset + 1))" "$LAB_VSPHERE_LOG" | grep -q '^READY '; then
            return 0
        fi
        pid_alive "$pid" || die "vsphere: the simulator exited; see $LAB_VSPHERE_LOG: $(tail -n 3 "$LAB_VSPHERE_LOG" | tr '\n' ' ')"
        (($(lab_now_us) - t0 > timeout * 1000000)) &&
            die "vsphere: the simulator (pid $pid) is not ready after ${timeout}s; see $LAB_VSPHERE_LOG"
        sleep 0.1
    done
}

vsphere_up() {
    local pid args offset t0 password
    mkdir -p "$LAB_VSPHERE_DIR/run" "$LAB_LOG_DIR"
    packages_ensure "${LAB_VSPHERE_PACKAGES[@]}"
    vsphere_build
    args=$(vsphere_args)
    if pid=$(daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab); then
        if [[ $args == "$(cat "$LAB_VSPHERE_DIR/run.args" 2>/dev/null)" ]]; then
            log "vsphere: simulator already running (pid $pid, $(vsphere_uri))"
            return 0
        fi
        log "vsphere: model, address or binary changed; restarting the simulator"
        stop_pid "vsphere simulator" "$pid"
    fi
    rm -f "$LAB_VSPHERE_PIDFILE"
    rm -rf "$LAB_VSPHERE_DIR/tmp"
    mkdir -p "$LAB_VSPHERE_DIR/tmp"
    password=$(vsphere_password)
    offset=$(stat -c %s "$LAB_VSPHERE_LOG" 2>/dev/null || echo 0)
    t0=$(lab_now_us)
    # setsid + nohup: detached from this shell; 3-9 closed: not holding the lab
    # lock or a caller's.
    # shellcheck disable=SC2086  # LAB_VSPHERE_MODEL is a list of flags
    VCSIM_PASSWORD=$password TMPDIR=$LAB_VSPHERE_DIR/tmp setsid nohup "$LAB_VSPHERE_BIN" \
        -listen "$LAB_VSPHERE_ADDR:$LAB_VSPHERE_PORT" -username "$LAB_VSPHERE_USER" \
        -https-listen "$LAB_VSPHERE_ADDR:$LAB_VSPHERE_HTTPS_PORT" -cert-out "$LAB_VSPHERE_CERT" \
        -state-file "$LAB_VSPHERE_ESTATE" -datastore-dir "$LAB_VSPHERE_DIR/datastores" \
        $LAB_VSPHERE_MODEL $(vsphere_legacy_flags) </dev/null >>"$LAB_VSPHERE_LOG" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$LAB_VSPHERE_PIDFILE"
    printf '%s\n' "$args" >"$LAB_VSPHERE_DIR/run.args"
    vsphere_wait_ready "$pid" "$offset" "${LAB_VSPHERE_TIMEOUT:-120}"
    log "vsphere: simulator serves $(vsphere_uri) after $(lab_elapsed "$t0")s (pid $pid, log $LAB_VSPHERE_LOG)"
}

vsphere_down() {
    local pid
    if pid=$(daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab); then
        stop_pid "vsphere simulator" "$pid"
    fi
    rm -f "$LAB_VSPHERE_PIDFILE" "$LAB_VSPHERE_DIR/run.args"
    rm -rf "$LAB_VSPHERE_DIR/tmp"
}

# vsphere_purge: forget the estate (after vsphere_down): the next start has
# the model's VMs only. Nova's instances on them lose their VMs (power state
# NOSTATE), hence `lab/lab down --purge` drops OpenStack's state too.
vsphere_purge() {
    local pid
    if pid=$(daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab); then
        die "vsphere: the simulator runs (pid $pid); purge after vsphere_down"
    fi
    rm -rf "$LAB_VSPHERE_ESTATE" "$LAB_VSPHERE_DIR/datastores"
    log "vsphere: forgot the estate ($LAB_VSPHERE_ESTATE, $LAB_VSPHERE_DIR/datastores)"
}

# One status block; returns 1 when the simulator is not running or not answering.
vsphere_status() {
    local pid about
    echo "vsphere simulator ($(vsphere_uri)):"
    if ! pid=$(daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab); then
        printf '  %-9s NOT RUNNING     log %s\n' vcsim-lab "$LAB_VSPHERE_LOG"
        return 1
    fi
    printf '  %-9s pid %-7s alive   log %s\n' vcsim-lab "$pid" "$LAB_VSPHERE_LOG"
    # /about answers without a login: it proves the HTTP side serves.
    if about=$(vsphere_http_get /about); then
        printf '  API       answers on http://%s:%s/sdk (%s methods)\n' "$LAB_VSPHERE_ADDR" \
            "$LAB_VSPHERE_PORT" "$(grep -c '^    "' <<<"$about")"
        printf '  https     https://%s:%s/sdk (self-signed: %s)\n' "$LAB_VSPHERE_ADDR" \
            "$LAB_VSPHERE_HTTPS_PORT" "$LAB_VSPHERE_CERT"
    else
        printf '  API       NOT ANSWERING on %s:%s\n' "$LAB_VSPHERE_ADDR" "$LAB_VSPHERE_PORT"
        return 1
    fi
}

# GET a path from the simulator with bash's /dev/tcp (no curl needed).
vsphere_http_get() {
    local body
    exec 8<>"/dev/tcp/$LAB_VSPHERE_ADDR/$LAB_VSPHERE_PORT" 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$LAB_VSPHERE_ADDR" >&8
    body=$(timeout 5 cat <&8) || true
    exec 8<&- 8>&-
    [[ $body == "HTTP/1."?" 200"* ]] || return 1
    printf '%s' "${body#*$'\r\n\r\n'}"
}

# vsphere_env [PREFIX]: shell assignments for tests (PREFIX e.g. "export ").
vsphere_env() {
    local prefix=${1:-}
    printf '%sLAB_VSPHERE_URI=%s\n' "$prefix" "$(shell_quote "$(vsphere_uri)")"
    printf '%sVSPHERE_PASSWORD=%s\n' "$prefix" "$(shell_quote "$(vsphere_password)")"
    printf '%sLAB_VSPHERE_LOG=%s\n' "$prefix" "$(shell_quote "$LAB_VSPHERE_LOG")"
    # oslo.vmware (Nova, Cinder): [vmware] host_ip/host_port, ca_file
    printf '%sLAB_VSPHERE_HTTPS_PORT=%s\n' "$prefix" "$(shell_quote "$LAB_VSPHERE_HTTPS_PORT")"
    printf '%sLAB_VSPHERE_CA_FILE=%s\n' "$prefix" "$(shell_quote "$LAB_VSPHERE_CERT")"
    printf '%sLAB_VSPHERE_BIN=%s\n' "$prefix" "$(shell_quote "$LAB_VSPHERE_BIN")"
    # The legacy VMs os-onboard adopts (make demo), all powered on when the lab is made.
    local n names=''
    for ((n = 1; n <= LAB_VSPHERE_LEGACY; n++)); do
        names+=${names:+ }$(printf 'legacy-vc-%02d' "$n")
    done
    printf '%sLAB_VSPHERE_LEGACY_VMS=%s\n' "$prefix" "$(shell_quote "$names")"
}
