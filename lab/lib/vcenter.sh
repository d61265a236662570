# shellcheck shell=bash
# The lab's vCenter under OpenStack: Nova's real VMware driver against the
# lab's vSphere simulator (lib/vsphere.sh), beside the libvirt computes of
# lib/openstack.sh. Sourced by lab/lab after openstack.sh, which calls the
# hooks below (os_service_def, os_all_services, os_template_args, openstack_up).
#
# What runs:
#   nova-compute-vc<N>  one nova-compute per simulator cluster (Nova's VMware
#                       driver manages exactly one cluster: [vmware]
#                       cluster_name), [DEFAULT] host vc-c<N>, state_path
#                       data/nova/host-vc<N>, config etc/nova/nova-compute-vc<N>.conf,
#                       pidfile run/nova-compute-vc<N>.pid, log
#                       log/openstack/nova-compute-vc<N>.log: started, stopped and
#                       reported like the libvirt computes (openstack.sh).
# What bootstrap.py's `vcenter` phase makes (after the computes report):
#   aggregate + AZ      LAB_VC_AZ (vcenter) holding vc-c<N>, metadata
#                       trait:CUSTOM_LAB_VCENTER=required. Nova's scheduler runs
#                       with enable_isolated_aggregate_filtering: a request that does
#                       not require the trait never lands there; the computes carry
#                       the trait on their resource provider (provider.yaml), so a
#                       request that requires it lands nowhere else.
#   image               LAB_VC_IMAGE: a 1 MiB streamOptimized VMDK made with
#                       qemu-img (Nova imports it through ImportVApp/NFC, which the
#                       simulator has; a sparse image needs CopyVirtualDisk of a file
#                       without -flat, which it has not), requiring the trait.
#   flavor              LAB_VC_FLAVOR: 1 vCPU, 128 MiB, root disk 0 (the simulator has
#                       no ExtendVirtualDisk_Task; a zero-disk flavor boots from an
#                       image for admins only, Nova's default policy), requiring the trait.
#   network             LAB_VC_NETWORK (vc-net): flat on LAB_VC_PHYSNET (physnet-vc),
#                       shared, subnet without DHCP. The onboard_bridge ML2 driver
#                       binds its ports on the vc-c<N> hosts as vif_type=dvs onto
#                       the port group LAB_VC_PORT_GROUP (ml2_conf.ini
#                       [ml2_onboard_bridge] vmware_hosts, physnet_port_groups).
#
# Settings: LAB_VC_CLUSTERS (DC0_C0 DC0_C1: the simulator's cluster names),
# LAB_VC_AZ (vcenter), LAB_VC_PHYSNET (physnet-vc), LAB_VC_PORT_GROUP
# (DC0_DVPG0), LAB_VC_NETWORK (vc-net), LAB_VC_CIDR (10.99.0.0/24),
# LAB_VC_IMAGE (vc-tiny-vmdk), LAB_VC_FLAVOR (vc.tiny).

: "${LAB_VC_CLUSTERS:=DC0_C0 DC0_C1}"
: "${LAB_VC_AZ:=vcenter}"
: "${LAB_VC_PHYSNET:=physnet-vc}"
: "${LAB_VC_PORT_GROUP:=DC0_DVPG0}"
: "${LAB_VC_NETWORK:=vc-net}"
: "${LAB_VC_CIDR:=10.99.0.0/24}"
: "${LAB_VC_IMAGE:=vc-tiny-vmdk}"
: "${LAB_VC_FLAVOR:=vc.tiny}"
LAB_VC_TRAIT=CUSTOM_LAB_VCENTER

vc_log() { log "vcenter: $*"; }

# The compute indexes 0..N-1, one per cluster of LAB_VC_CLUSTERS.
vcenter_indexes() {
    local -a clusters
    read -r -a clusters <<<"$LAB_VC_CLUSTERS"
    seq 0 $((${#clusters[@]} - 1))
}

vcenter_cluster() {
    local -a clusters
    read -r -a clusters <<<"$LAB_VC_CLUSTERS"
    printf '%s' "${clusters[$1]}"
}

vcenter_host() { printf 'vc-c%s' "$1"; }
vcenter_state() { printf '%s/nova/host-vc%s' "$LAB_OS_DATA" "$1"; }
vcenter_conf() { printf '%s/nova/nova-compute-vc%s.conf' "$LAB_OS_ETC" "$1"; }

# The VMware computes' [DEFAULT] host names, space separated.
vcenter_hosts() {
    local i out=()
    for i in $(vcenter_indexes); do out+=("$(vcenter_host "$i")"); done
    printf '%s' "${out[*]}"
}

# Hook of os_all_services: the service names, one a line.
vcenter_services() {
    local i
    for i in $(vcenter_indexes); do printf 'nova-compute-vc%s\n' "$i"; done
}

# Hook of os_template_args: the keys ml2_conf.ini needs.
vcenter_template_args() {
    OS_T+=(VC_PHYSNET="$LAB_VC_PHYSNET" VC_PORT_GROUP="$LAB_VC_PORT_GROUP"
        VC_HOSTS="$(vcenter_hosts | tr ' ' ',')")
}

# vcenter_render I: the compute's config and provider.yaml.
vcenter_render() {
    local i=$1 state
    state=$(vcenter_state "$i")
    os_template_args
    mkdir -p "$state/provider_config"
    lab_template "$LAB_OS_SRC/etc/nova-compute-vmware.conf" "${OS_T[@]}" \
        SERVICE="nova-compute-vc$i" COMPUTE_HOST="$(vcenter_host "$i")" CLUSTER="$(vcenter_cluster "$i")" \
        STATE_PATH="$state" VC_HOST="$LAB_VSPHERE_ADDR" VC_PORT="$LAB_VSPHERE_HTTPS_PORT" \
        VC_USER="$LAB_VSPHERE_USER" VC_PASSWORD="$(vsphere_password)" VC_CA_FILE="$LAB_VSPHERE_CERT" |
        os_write "$(vcenter_conf "$i")"
    # $COMPUTE_NODE: the node this compute manages (its cluster).
    os_write "$state/provider_config/lab-vcenter.yaml" <<EOF
# Rendered by lab/lib/vcenter.sh: the vcenter aggregate requires this trait.
meta:
  schema_version: '1.0'
providers:
  - identification:
      uuid: \$COMPUTE_NODE
    traits:
      additional:
        - $LAB_VC_TRAIT
EOF
}

# Hook of os_service_def for nova-compute-vc<N>: OS_CMD, OS_FILES, OS_CHECK.
vcenter_service_def() {
    local name=$1 i=${1#nova-compute-vc} e=$LAB_OS_ETC
    # <name>.d: settings a test adds for one run, removed after it (as the libvirt computes)
    mkdir -p "$e/nova/$name.d"
    OS_CMD=("$LAB_OS_VENV/bin/nova-compute" --config-file "$(vcenter_conf "$i")" --config-dir "$e/nova/$name.d")
    # The simulator's pidfile and certificate: a simulator restart (new
    # certificate; a model change may move morefs) restarts the compute, so it
    # never keeps a stale VM-reference cache or session.
    OS_FILES=("$(vcenter_conf "$i")" "$(vcenter_state "$i")/provider_config/lab-vcenter.yaml"
        "$LAB_VSPHERE_PIDFILE" "$LAB_VSPHERE_CERT")
    OS_CHECK="compute:$(vcenter_host "$i")"
}

# vcenter_ready: 0 when the simulator serves https; else sets VC_WHY.
vcenter_ready() {
    VC_WHY=
    if ! daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab >/dev/null; then
        VC_WHY="the vSphere simulator is not running (lab/lab up starts it)"
        return 1
    fi
    if [[ ! -s $LAB_VSPHERE_CERT ]] || ! os_port_open "$LAB_VSPHERE_HTTPS_PORT"; then
        VC_WHY="the vSphere simulator does not serve https on $LAB_VSPHERE_ADDR:$LAB_VSPHERE_HTTPS_PORT"
        return 1
    fi
}

# Hook of openstack_up (under its lock, OS_IN_UP set): render and start the
# VMware computes; os_wait_pending in openstack_up waits for them.
vcenter_computes_start() {
    local i name
    for i in $(vcenter_indexes); do
        name=nova-compute-vc$i
        if ! vcenter_ready; then
            printf '%s\n' "$VC_WHY" >"$LAB_OS_RUN/$name.skipped"
            os_pid "$name" >/dev/null && os_service_stop "$name"
            vc_log "$name not started: $VC_WHY"
            continue
        fi
        rm -f "$LAB_OS_RUN/$name.skipped"
        vcenter_render "$i"
        os_service_start "$name"
    done
}

# The image file: a 1 MiB streamOptimized VMDK (lsiLogic), made once.
vcenter_image_file() {
    local dir=$LAB_OS_DATA/vcenter f
    f=$dir/vc-tiny-streamoptimized.vmdk
    if [[ ! -s $f ]]; then
        mkdir -p "$dir"
        qemu-img create -q -f raw "$dir/vc-tiny.raw" 1M &&
            qemu-img convert -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic \
                "$dir/vc-tiny.raw" "$f.new" && mv -f "$f.new" "$f" ||
            die "vcenter: qemu-img could not make $f"
        rm -f "$dir/vc-tiny.raw"
    fi
    printf '%s' "$f"
}

# Hook of openstack_up, after the resources phase: bootstrap.py vcenter unless
# nothing it depends on changed (its inputs and the VMware compute nodes' ids).
vcenter_bootstrap() {
    local i name hosts='' logf=$LAB_OS_LOG/bootstrap.log stamp nodes t0 image
    for i in $(vcenter_indexes); do
        name=nova-compute-vc$i
        # Only computes that run (and reported: os_wait_pending) join the aggregate.
        os_pid "$name" >/dev/null && hosts+=${hosts:+,}$(vcenter_host "$i")
    done
    [[ -n $hosts ]] || { vc_log "no VMware compute runs: aggregate, image, flavor and network left as they are"; return 0; }
    image=$(vcenter_image_file)
    os_bootstrap_env
    OS_BOOT_ENV+=(LAB_OS_VC_HOSTS="$hosts" LAB_OS_VC_AZ="$LAB_VC_AZ" LAB_OS_VC_TRAIT="$LAB_VC_TRAIT"
        LAB_OS_VC_IMAGE="$LAB_VC_IMAGE" LAB_OS_VC_IMAGE_FILE="$image" LAB_OS_VC_FLAVOR="$LAB_VC_FLAVOR"
        LAB_OS_VC_NETWORK="$LAB_VC_NETWORK" LAB_OS_VC_PHYSNET="$LAB_VC_PHYSNET" LAB_OS_VC_CIDR="$LAB_VC_CIDR")
    nodes=$(os_sql "SELECT host, uuid FROM nova.compute_nodes WHERE deleted = 0 AND host LIKE 'vc-c%' ORDER BY host")
    stamp=$({ printf '%s\n' "${OS_BOOT_ENV[@]}" "$nodes"; cat "$LAB_OS_SRC/bootstrap.py"; } | sha256sum | cut -c1-16)
    [[ $(cat "$LAB_OS_RUN/bootstrap-vcenter.stamp" 2>/dev/null) == "$stamp" ]] && return 0
    t0=$(lab_now_us)
    env -i "${OS_BOOT_ENV[@]}" "$LAB_OS_VENV/bin/python" "$LAB_OS_SRC/bootstrap.py" vcenter >>"$logf" 2>&1 7>&- 9>&- ||
        die "openstack: bootstrap.py vcenter failed; see $logf:
$(os_tail "$logf" 4)"
    printf '%s\n' "$stamp" >"$LAB_OS_RUN/bootstrap-vcenter.stamp"
    os_log "bootstrap vcenter done in $(lab_elapsed "$t0")s (AZ $LAB_VC_AZ: $hosts)"
}

# vcenter_env [PREFIX]: shell assignments for tests (PREFIX e.g. "export ").
vcenter_env() {
    local prefix=${1:-} k
    local -A v=(
        [LAB_NOVA_VC_HOSTS]=$(vcenter_hosts)
        [LAB_VC_CLUSTERS]=$LAB_VC_CLUSTERS
        [LAB_VC_AZ]=$LAB_VC_AZ
        [LAB_VC_IMAGE]=$LAB_VC_IMAGE
        [LAB_VC_FLAVOR]=$LAB_VC_FLAVOR
        [LAB_VC_NETWORK]=$LAB_VC_NETWORK
        [LAB_VC_PHYSNET]=$LAB_VC_PHYSNET
        [LAB_VC_PORT_GROUP]=$LAB_VC_PORT_GROUP
        [LAB_VC_TRAIT]=$LAB_VC_TRAIT
    )
    for k in LAB_NOVA_VC_HOSTS LAB_VC_CLUSTERS LAB_VC_AZ LAB_VC_IMAGE LAB_VC_FLAVOR LAB_VC_NETWORK \
        LAB_VC_PHYSNET LAB_VC_PORT_GROUP LAB_VC_TRAIT; do
        printf '%s%s=%s\n' "$prefix" "$k" "$(shell_quote "${v[$k]}")"
    done
}
