# shellcheck shell=bash
# The legacy guests: defined and started with plain virsh, as an admin would.
# They are defined and started on host A. `lab/lab migrate` moves a running
# guest between A and B; every function here finds a guest on the host that
# currently has it (guest_host), so `up` leaves a migrated guest where it is.

declare -A G_STATE=() G_MEM=() G_MACS=() G_WWN=() G_META=() G_RBD=()
G_ALL=()      # every guest of the config file
G_SELECTED=() # LAB_GUESTS, else all

# Custom namespace of the <metadata> element (like an inventory tool's tag).
LAB_META_NS=http://os-onboard.example/xmlns/legacy-inventory/1.0

# A guest's RBD disk (column rbd) comes from lib/ceph.sh (lab/lab sources it too).
# shellcheck source=lib/ceph.sh
declare -F ceph_disk_xml >/dev/null || . "$LAB_DIR/lib/ceph.sh"

guests_load() {
    local name state mem macs wwn meta rbd rest n
    [[ -r $LAB_GUESTS_CONF ]] || die "guest config $LAB_GUESTS_CONF not readable"
    G_ALL=()
    while read -r name state mem macs wwn meta rbd rest; do
        [[ -z $name || $name == \#* ]] && continue
        [[ $state == running || $state == off ]] || die "$LAB_GUESTS_CONF: $name: state must be running|off, not '$state'"
        [[ $mem =~ ^[0-9]+$ ]] || die "$LAB_GUESTS_CONF: $name: memory '$mem' is not a number of MiB"
        ((mem >= 88)) || die "$LAB_GUESTS_CONF: $name: the stock Debian kernel needs at least 88 MiB, not $mem"
        [[ $wwn == - || $wwn =~ ^[0-9a-fA-F]{16}$ ]] || die "$LAB_GUESTS_CONF: $name: WWN must be 16 hex digits or -"
        G_ALL+=("$name")
        [[ ${rbd:--} == - || $rbd =~ ^[0-9]+$ ]] || die "$LAB_GUESTS_CONF: $name: rbd must be a size in MiB or -"
        G_STATE[$name]=$state G_MEM[$name]=$mem G_MACS[$name]=$macs G_WWN[$name]=$wwn G_META[$name]=${meta:-no}
        G_RBD[$name]=${rbd:--}
    done <"$LAB_GUESTS_CONF"
    if [[ -n ${LAB_GUESTS:-} ]]; then
        G_SELECTED=()
        for n in $LAB_GUESTS; do
            [[ -n ${G_STATE[$n]:-} ]] || die "LAB_GUESTS names '$n', which $LAB_GUESTS_CONF does not define"
            G_SELECTED+=("$n")
        done
    else
        G_SELECTED=("${G_ALL[@]}")
    fi
}

guests_running_selected() {
    local n
    for n in "${G_SELECTED[@]}"; do
        [[ ${G_STATE[$n]} == running ]] && printf '%s\n' "$n"
    done
    return 0
}

# guest_is_lab NAME: a guest of the config, or one an earlier config defined.
guest_is_lab() {
    local n
    for n in "${G_ALL[@]}"; do
        [[ $n == "$1" ]] && return 0
    done
    grep -qxF "$1" "$LAB_RUN_DIR/guests.defined" 2>/dev/null
}

# guest_host NAME: the lab host (a, b) that has the guest: the one where it is
# active (running, paused, ...), else the first one that defines it; nothing
# when no running host knows it.
guest_host() {
    local host state defined=
    for host in $(lab_hosts); do
        state=$(guest_state "$(host_uri "$host")" "$1")
        case $state in
        undefined) ;;
        "shut off" | crashed) defined=${defined:-$host} ;;
        *)
            printf '%s' "$host"
            return 0
            ;;
        esac
    done
    printf '%s' "$defined"
}

guest_console_log() { printf '%s/%s-console.log' "$LAB_CONSOLE_DIR" "$1"; }
guest_root_disk() { printf '%s/%s-root.qcow2' "$LAB_IMAGE_DIR" "$1"; }
guest_data_disk() { printf '%s/%s-data.raw' "$LAB_IMAGE_DIR" "$1"; }
guest_nic_count() {
    local -a macs
    IFS=, read -ra macs <<<"${G_MACS[$1]}"
    printf '%s' "${#macs[@]}"
}

guest_xml() {
    local name=$1 meta='' devices='' mac
    if [[ ${G_META[$name]} == yes ]]; then
        meta="
  <title>Legacy web server ($name)</title>
  <description>Started by hand with virsh long before OpenStack; os-onboard lab guest.</description>
  <metadata>
    <inv:app xmlns:inv='$LAB_META_NS'>
      <inv:owner>team-web</inv:owner>
      <inv:cost-center>cc-4711</inv:cost-center>
      <inv:tier>production</inv:tier>
    </inv:app>
  </metadata>"
    fi
    if [[ ${G_WWN[$name]} != - ]]; then
        devices+="
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$(guest_data_disk "$name")'/>
      <target dev='sda' bus='scsi'/>
      <serial>data-$name</serial>
      <wwn>${G_WWN[$name]}</wwn>
    </disk>"
    fi
    [[ ${G_RBD[$name]} == - ]] || devices+=$(ceph_disk_xml "$name")
    for mac in ${G_MACS[$name]//,/ }; do
        devices+="
    <interface type='network'>
      <mac address='$mac'/>
      <source network='$LAB_NETWORK'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>"
    done
    lab_template "$LAB_DIR/xml/domain.xml" \
        NAME="$name" META="$meta" MEM="${G_MEM[$name]}" \
        KERNEL="$LAB_KERNEL_VMLINUX" INITRD="$LAB_KERNEL_INITRD" \
        ROOT_DISK="$(guest_root_disk "$name")" DEVICES="$devices" \
        CONSOLE_LOG="$(guest_console_log "$name")"
}

# Domain state as virsh prints it ("running", "shut off", ...); "undefined" if unknown.
guest_state() {
    local out
    if out=$(virsh -c "$1" --readonly domstate "$2" 2>/dev/null) && [[ -n ${out%%$'\n'*} ]]; then
        printf '%s' "${out%%$'\n'*}"
    else
        printf 'undefined'
    fi
}

guest_define() {
    local uri=$1 name=$2 xml hash tmp state
    xml=$(guest_xml "$name")
    hash=$(sha256sum <<<"$xml" | cut -d' ' -f1)
    state=$(guest_state "$uri" "$name")
    if [[ $state != undefined ]]; then
        [[ $(cat "$LAB_RUN_DIR/$name.xml-hash" 2>/dev/null) == "$hash" ]] && return 0
        if [[ $state != "shut off" ]]; then
            warn "$name is $state with a definition older than the lab's config; run 'lab/lab down' and 'lab/lab up' to apply it"
            return 0
        fi
        log "$name: definition changed; redefining"
    else
        # A new guest: fresh disks, and the previous console log kept aside.
        rm -f "$(guest_root_disk "$name")" "$(guest_data_disk "$name")"
        [[ ${G_RBD[$name]} == - ]] || ceph_guest_disk_remove "$name"
        [[ -s $(guest_console_log "$name") ]] && mv -f "$(guest_console_log "$name")" "$(guest_console_log "$name").prev"
    fi
    [[ -e $(guest_root_disk "$name") ]] ||
        qemu-img create -q -f qcow2 "$(guest_root_disk "$name")" 1G
    if [[ ${G_WWN[$name]} != - && ! -e $(guest_data_disk "$name") ]]; then
        qemu-img create -q -f raw "$(guest_data_disk "$name")" 64M
    fi
    [[ ${G_RBD[$name]} == - ]] || ceph_guest_disk "$name" "${G_RBD[$name]}"
    tmp=$(mktemp)
    printf '%s\n' "$xml" >"$tmp"
    virsh -q -c "$uri" define "$tmp" >/dev/null || { rm -f "$tmp"; die "virsh define $name failed (XML kept in nothing; rerun with bash -x)"; }
    rm -f "$tmp"
    printf '%s\n' "$hash" >"$LAB_RUN_DIR/$name.xml-hash"
    grep -qxF "$name" "$LAB_RUN_DIR/guests.defined" 2>/dev/null || printf '%s\n' "$name" >>"$LAB_RUN_DIR/guests.defined"
    log "$name: defined (${G_MEM[$name]} MiB, NICs ${G_MACS[$name]}, data disk WWN ${G_WWN[$name]})"
}

guest_start() {
    local host=$1 name=$2 uri state logf
    uri=$(host_uri "$host")
    state=$(guest_state "$uri" "$name")
    case $state in
    running)
        if ! cmp -s "$LAB_GUEST_DIR/initramfs.hash" "$LAB_RUN_DIR/$name.image-hash"; then
            warn "$name runs an older guest image; 'virsh destroy $name' + 'lab/lab up' (or down + up) boots the new one"
        fi
        return 0
        ;;
    paused)
        warn "$name is paused (left as it is)"
        return 0
        ;;
    esac
    logf=$(guest_console_log "$name")
    # Lines after this offset belong to this boot.
    stat -c %s "$logf" 2>/dev/null >"$LAB_RUN_DIR/$name.console-offset" || echo 0 >"$LAB_RUN_DIR/$name.console-offset"
    lab_now_us >"$LAB_RUN_DIR/$name.started-us"
    cp "$LAB_GUEST_DIR/initramfs.hash" "$LAB_RUN_DIR/$name.image-hash"
    [[ ${G_RBD[$name]} == - ]] || ceph_guest_prepare "$uri" "$name"
    virsh -q -c "$uri" start "$name" >/dev/null ||
        die "virsh start $name failed on host ${host^^}; see $(host_sys_dir "$host" log)/qemu/$name.log and $(daemon_log "$host" libvirtd)"
    log "$name: started on host ${host^^} (console log $logf)"
}

# Define the selected guests on host A and start those that should run; a
# guest that lives on another host (migrated there) is left where it is.
guests_up() {
    local name host
    for name in "${G_SELECTED[@]}"; do
        host=$(guest_host "$name")
        if [[ -n $host && $host != a ]]; then
            log "$name: lives on host ${host^^} ($(guest_state "$(host_uri "$host")" "$name")); left there"
        else
            guest_define "$LAB_HOST_A_URI" "$name"
        fi
    done
    for name in $(guests_running_selected); do
        host=$(guest_host "$name")
        guest_start "${host:-a}" "$name"
    done
}

# The console output of the current boot: what the guest wrote after the
# offset recorded by the lab's last `virsh start` and after the last LAB-BOOT
# marker, within the last 64 KiB; carriage returns removed.
guest_console_tail() {
    local f size off=0 from
    f=$(guest_console_log "$1")
    [[ -r $f ]] || return 0
    size=$(stat -c %s "$f")
    [[ -s $LAB_RUN_DIR/$1.console-offset ]] && read -r off <"$LAB_RUN_DIR/$1.console-offset"
    ((off <= size)) || off=0 # the log was truncated or replaced
    from=$((size - 65536 > off ? size - 65536 : off))
    tail -c +$((from + 1)) "$f" | tr -d '\r' |
        awk '/LAB-BOOT /{n=0} {buf[n++]=$0} END{for(i=0;i<n;i++) print buf[i]}'
}

guest_last_heartbeat() {
    guest_console_tail "$1" | awk '/HEARTBEAT /{sub(/.*HEARTBEAT /, "HEARTBEAT "); h=$0} END{print h}'
}

# Seconds since the console log was last written.
guest_console_age() {
    local f m
    f=$(guest_console_log "$1")
    m=$(stat -c %Y "$f" 2>/dev/null) || { printf '999999'; return; }
    printf '%s' $(($(date +%s) - m))
}

# IPv4 leases of a guest on host URI: lines "vnetN MAC IP/LEN". Only host A
# runs DHCP: on another host the guest's MACs are looked up in A's leases.
guest_leases() {
    local uri=$1 name=$2
    if [[ $uri == "$LAB_HOST_A_URI" ]]; then
        virsh -q -c "$uri" --readonly domifaddr "$name" --source lease 2>/dev/null |
            awk '$3 == "ipv4" {print $1, $2, $4}' || true
        return 0
    fi
    # domiflist: "vnet3 network onboard-lab virtio 52:54:00:..";
    # net-dhcp-leases: "date time MAC ipv4 IP/LEN hostname clientid".
    awk 'FNR == NR {iface[$5] = $1; next} $4 == "ipv4" && ($3 in iface) {print iface[$3], $3, $5}' \
        <(virsh -q -c "$uri" --readonly domiflist "$name" 2>/dev/null || true) \
        <(virsh -q -c "$LAB_HOST_A_URI" --readonly net-dhcp-leases "$LAB_NETWORK" 2>/dev/null || true)
}

# guest_ready URI NAME: 0 when every NIC has a lease and the heartbeat of the
# current boot is fresh and shows an address on every NIC.
guest_ready() {
    local uri=$1 name=$2 nics hb leases
    nics=$(guest_nic_count "$name")
    leases=$(guest_leases "$uri" "$name" | grep -c . || true)
    ((leases >= nics)) || return 1
    hb=$(guest_last_heartbeat "$name")
    [[ -n $hb && $hb != *=- && $hb != *"=- "* ]] || return 1
    (($(grep -o ' ip=' <<<"$hb" | wc -l) >= nics)) || return 1
    (($(guest_console_age "$name") <= 5))
}

guest_fail_hint() {
    local name=$1 host=${2:-a} lines
    lines=$(guest_console_tail "$name" | tail -n 6 | sed 's/^/    | /')
    if [[ -n $lines ]]; then lines="last lines:"$'\n'"$lines"$'\n'; else lines="no output since virsh start"; fi
    printf 'see the console log %s (%s) and the QEMU log %s/qemu/%s.log' \
        "$(guest_console_log "$name")" "$lines" "$(host_sys_dir "$host" log)" "$name"
}

# Wait until every running selected guest has its lease(s) and a heartbeat,
# on whichever host it runs.
guests_wait() {
    local t0 name state host uri pending=() still started boot
    t0=$(lab_now_us)
    mapfile -t pending < <(guests_running_selected)
    while ((${#pending[@]})); do
        still=()
        for name in "${pending[@]}"; do
            host=$(guest_host "$name")
            host=${host:-a}
            uri=$(host_uri "$host")
            state=$(guest_state "$uri" "$name")
            if [[ $state == paused ]]; then
                continue # left paused on purpose (guest_start warned)
            fi
            if [[ $state != running ]]; then
                die "$name is '$state' instead of running on host ${host^^}; $(guest_fail_hint "$name" "$host")"
            fi
            if guest_ready "$uri" "$name"; then
                boot=
                if started=$(cat "$LAB_RUN_DIR/$name.started-us" 2>/dev/null) && ((started >= t0 - 600000000)); then
                    boot=" $(lab_since "$started")s after virsh start"
                    rm -f "$LAB_RUN_DIR/$name.started-us"
                fi
                log "$name: up on host ${host^^}${boot}: $(guest_leases "$uri" "$name" | awk '{printf "%s%s %s", sep, $2, $3; sep=", "}')"
            else
                still+=("$name")
            fi
        done
        pending=("${still[@]}")
        ((${#pending[@]})) || break
        if (($(lab_now_us) - t0 > LAB_BOOT_TIMEOUT * 1000000)); then
            for name in "${pending[@]}"; do
                host=$(guest_host "$name")
                log "$name: no DHCP lease(s) + heartbeat after ${LAB_BOOT_TIMEOUT}s on host ${host:-?}; $(guest_fail_hint "$name" "${host:-a}")" >&2
            done
            die "guests not up within ${LAB_BOOT_TIMEOUT}s: ${pending[*]} (LAB_BOOT_TIMEOUT raises the limit)"
        fi
        sleep 0.5
    done
}

# guest_down HOST NAME LIBVIRTD_ALIVE(0|1): destroy + undefine a lab guest on
# HOST and delete its disks. Without libvirtd, kill its QEMU by pidfile.
guest_down() {
    local host=$1 name=$2 alive=$3 uri
    uri=$(host_uri "$host")
    if ((alive)); then
        if virsh -c "$uri" --readonly dominfo "$name" >/dev/null 2>&1; then
            virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
            # A transient domain (migrated without --persistent) is gone now.
            if virsh -c "$uri" --readonly dominfo "$name" >/dev/null 2>&1; then
                virsh -q -c "$uri" undefine "$name" >/dev/null || die "virsh undefine $name failed on host ${host^^}"
            fi
            log "$name: destroyed and undefined on host ${host^^}"
        fi
    else
        guest_down_files "$host" "$name"
    fi
    rm -f "$LAB_RUN_DIR/$name".{xml-hash,console-offset,started-us,image-hash} \
        "$(guest_root_disk "$name")" "$(guest_data_disk "$name")"
}

# guest_down_files HOST NAME: libvirtd of HOST is not running: stop the
# guest's QEMU by pidfile and remove the definition and status files
# libvirtd would have removed.
guest_down_files() {
    local host=$1 name=$2 etc run lib pid
    etc=$(host_sys_dir "$host" etc) run=$(host_sys_dir "$host" run) lib=$(host_sys_dir "$host" lib)
    if pid=$(pidfile_pid "$run/qemu/$name.pid"); then
        [[ $(proc_comm "$pid") == qemu-system-* ]] && stop_pid "QEMU of $name (host ${host^^})" "$pid"
    fi
    if [[ -e $etc/qemu/$name.xml || -e $run/qemu/$name.xml ]]; then
        rm -rf "$etc/qemu/$name.xml" "$etc/qemu/autostart/$name.xml" \
            "$run/qemu/$name.xml" "$run/qemu/$name.pid" \
            "$lib"/qemu/domain-*-"$name"
        log "$name: removed its libvirt definition/status files on host ${host^^} (libvirtd not running)"
    fi
}

# guest_status NAME: one line (two when running) on the host that has it.
guest_status() {
    local name=$1 host uri state id pid rss hb age ips
    host=$(guest_host "$name")
    host=${host:-a}
    uri=$(host_uri "$host")
    state=$(guest_state "$uri" "$name")
    id=$(virsh -c "$uri" --readonly domid "$name" 2>/dev/null | head -n1 || true)
    [[ $id =~ ^[0-9]+$ ]] || id=-
    pid=$(pidfile_pid "$(host_sys_dir "$host" run)/qemu/$name.pid" || echo -)
    rss=-
    [[ $pid != - ]] && rss=$(pid_rss "$pid")
    ips=$(guest_leases "$uri" "$name" | awk '{printf "%s%s=%s", sep, $2, $3; sep=" "}')
    printf '  %-8s host=%s state=%-8s id=%-3s qemu-pid=%-7s rss=%-8s ips: %s\n' \
        "$name" "${host^^}" "${state// /-}" "$id" "$pid" "$rss" "${ips:--}"
    if [[ $state == running ]]; then
        hb=$(guest_last_heartbeat "$name")
        age=$(guest_console_age "$name")
        printf '           heartbeat (console written %ss ago): %s\n' "$age" "${hb:-none yet}"
    fi
}
