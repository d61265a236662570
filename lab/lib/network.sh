# shellcheck shell=bash
# The isolated libvirt network of the lab (bridge + libvirt's dnsmasq DHCP).

network_cidr() { printf '%s.0/24' "$LAB_NET_PREFIX"; }

# Refuse a subnet that the host already uses elsewhere.
network_check_subnet() {
    local line
    line=$(ip -4 route show to match "$LAB_NET_PREFIX.1" 2>/dev/null | grep -v '^default' | grep -vw "$LAB_BRIDGE" || true)
    [[ -z $line ]] ||
        die "subnet $(network_cidr) is already routed on this host ($line); pick another /24 with LAB_NET_PREFIX=10.x.y"
    line=$(ip -4 -o addr show 2>/dev/null | grep -F " $LAB_NET_PREFIX." | grep -vw "$LAB_BRIDGE" || true)
    [[ -z $line ]] ||
        die "an address in $(network_cidr) is already configured ($line); pick another /24 with LAB_NET_PREFIX=10.x.y"
}

network_up() {
    local uri=$1 tmp info xml hash
    xml=$(lab_template "$LAB_DIR/xml/network.xml" NAME="$LAB_NETWORK" BRIDGE="$LAB_BRIDGE" PREFIX="$LAB_NET_PREFIX")
    hash=$(sha256sum <<<"$xml" | cut -d' ' -f1)
    if ! info=$(virsh -c "$uri" net-info "$LAB_NETWORK" 2>/dev/null); then
        network_check_subnet
        tmp=$(mktemp)
        printf '%s\n' "$xml" >"$tmp"
        virsh -q -c "$uri" net-define "$tmp" >/dev/null || { rm -f "$tmp"; die "virsh net-define $LAB_NETWORK failed"; }
        rm -f "$tmp"
        printf '%s\n' "$hash" >"$LAB_RUN_DIR/network.xml-hash"
        log "network $LAB_NETWORK: defined ($LAB_BRIDGE, $(network_cidr))"
        info=$(virsh -c "$uri" net-info "$LAB_NETWORK")
    elif [[ $(cat "$LAB_RUN_DIR/network.xml-hash" 2>/dev/null) != "$hash" ]]; then
        warn "network $LAB_NETWORK was defined from an older lab config; 'lab/lab down' + 'lab/lab up' applies the new one"
    fi
    if grep -Eq '^Active:[[:space:]]+yes' <<<"$info"; then
        log "network $LAB_NETWORK: already active"
        return 0
    fi
    network_check_subnet
    virsh -q -c "$uri" net-start "$LAB_NETWORK" >/dev/null ||
        die "virsh net-start $LAB_NETWORK failed; see $(daemon_log a libvirtd)"
    log "network $LAB_NETWORK: started (bridge $LAB_BRIDGE, dnsmasq pid $(network_dnsmasq_pid || echo '?'))"
}

network_dnsmasq_pid() { pidfile_pid "/run/libvirt/network/$LAB_NETWORK.pid"; }

# network_down URI LIBVIRTD_ALIVE(0|1)
network_down() {
    local uri=$1 alive=$2 pid
    if ((alive)); then
        if virsh -c "$uri" net-info "$LAB_NETWORK" >/dev/null 2>&1; then
            virsh -q -c "$uri" net-destroy "$LAB_NETWORK" >/dev/null 2>&1 || true
            virsh -q -c "$uri" net-undefine "$LAB_NETWORK" >/dev/null ||
                die "virsh net-undefine $LAB_NETWORK failed"
            rm -f "$LAB_RUN_DIR/network.xml-hash"
            log "network $LAB_NETWORK: destroyed and undefined"
        fi
        return 0
    fi
    # libvirtd is gone: clean up what it left running by pidfile/name.
    if pid=$(network_dnsmasq_pid); then
        [[ $(proc_comm "$pid") == dnsmasq ]] && stop_pid "dnsmasq of $LAB_NETWORK" "$pid"
    fi
    if ip link show "$LAB_BRIDGE" >/dev/null 2>&1; then
        ip link del "$LAB_BRIDGE" && log "deleted leftover bridge $LAB_BRIDGE"
    fi
    if [[ -e /etc/libvirt/qemu/networks/$LAB_NETWORK.xml || -e /run/libvirt/network/$LAB_NETWORK.xml ]]; then
        rm -rf "/etc/libvirt/qemu/networks/$LAB_NETWORK.xml" "/etc/libvirt/qemu/networks/autostart/$LAB_NETWORK.xml" \
            "/run/libvirt/network/$LAB_NETWORK.xml" "/run/libvirt/network/$LAB_NETWORK.pid" \
            "/run/libvirt/network/$LAB_NETWORK" /var/lib/libvirt/dnsmasq/"$LAB_NETWORK".* \
            /var/lib/libvirt/dnsmasq/"$LAB_BRIDGE".*
        log "network $LAB_NETWORK: removed its libvirt definition/status files (libvirtd not running)"
    fi
}

# Remove LIBVIRT_* chains that libvirt leaves behind once no network uses them.
iptables_cleanup() {
    local cmd table chain refs n=0 rule
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for table in filter nat mangle; do
            # Rules for the lab bridge that a dead libvirtd could not remove.
            while IFS= read -r rule; do
                # shellcheck disable=SC2086
                "$cmd" -w -t "$table" ${rule/-A/-D} && n=$((n + 1))
            done < <("$cmd" -w -t "$table" -S 2>/dev/null | grep -E -- "^-A LIBVIRT_[A-Z]+ .*-[io] $LAB_BRIDGE( |\$)" || true)
            for chain in $("$cmd" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^LIBVIRT_/ {print $2}'); do
                # Only empty chains (-S CHAIN prints just "-N CHAIN").
                (($("$cmd" -w -t "$table" -S "$chain" | wc -l) == 1)) || continue
                while IFS= read -r refs; do
                    # shellcheck disable=SC2086
                    "$cmd" -w -t "$table" ${refs/-A/-D}
                done < <("$cmd" -w -t "$table" -S | grep -E -- "-j $chain\$" || true)
                "$cmd" -w -t "$table" -X "$chain" && n=$((n + 1))
            done
        done
    done
    ((n == 0)) || log "iptables: removed $n leftover LIBVIRT_* rules and empty chains"
}

network_status() {
    local uri=$1 info active leases pid
    if ! info=$(virsh -c "$uri" --readonly net-info "$LAB_NETWORK" 2>/dev/null); then
        printf '  %s: NOT DEFINED\n' "$LAB_NETWORK"
        return 1
    fi
    active=$(awk '$1 == "Active:" {print $2}' <<<"$info")
    leases=$(virsh -q -c "$uri" --readonly net-dhcp-leases "$LAB_NETWORK" 2>/dev/null | grep -c . || true)
    pid=$(network_dnsmasq_pid || echo -)
    printf '  %s: active=%s bridge=%s subnet=%s dnsmasq pid %s, %s DHCP lease(s)\n' \
        "$LAB_NETWORK" "$active" "$LAB_BRIDGE" "$(network_cidr)" "$pid" "$leases"
    [[ $active == yes ]]
}

# --- the network on the other hosts (B): bridge mode on A's bridge ----------
# Same name as A's network, so a migrated guest's <source network=...> resolves
# on its new host and its tap joins the same bridge: it keeps its IP, and its
# lease stays with A's dnsmasq (so `domifaddr --source lease` is empty on B).

network_bridge_xml() {
    cat <<EOF2
<!-- os-onboard lab: host B's view of $LAB_NETWORK: host A's bridge, no DHCP here. -->
<network>
  <name>$LAB_NETWORK</name>
  <forward mode='bridge'/>
  <bridge name='$LAB_BRIDGE'/>
</network>
EOF2
}

# network_bridge_up HOST
network_bridge_up() {
    local host=$1 uri info xml hash tmp hashf
    uri=$(host_uri "$host")
    hashf=$LAB_RUN_DIR/network-$host.xml-hash
    xml=$(network_bridge_xml)
    hash=$(sha256sum <<<"$xml" | cut -d' ' -f1)
    if info=$(virsh -c "$uri" net-info "$LAB_NETWORK" 2>/dev/null) && [[ $(cat "$hashf" 2>/dev/null) != "$hash" ]]; then
        # Only the lab defines networks on B: replace an older definition.
        virsh -q -c "$uri" net-destroy "$LAB_NETWORK" >/dev/null 2>&1 || true
        virsh -q -c "$uri" net-undefine "$LAB_NETWORK" >/dev/null 2>&1 || true
        info=
    fi
    if [[ -z $info ]]; then
        tmp=$(mktemp)
        printf '%s\n' "$xml" >"$tmp"
        virsh -q -c "$uri" net-define "$tmp" >/dev/null || { rm -f "$tmp"; die "host ${host^^}: virsh net-define $LAB_NETWORK failed; see $(daemon_log "$host" libvirtd)"; }
        rm -f "$tmp"
        printf '%s\n' "$hash" >"$hashf"
        info=$(virsh -c "$uri" net-info "$LAB_NETWORK")
        log "host ${host^^}: network $LAB_NETWORK defined (bridge mode on $LAB_BRIDGE)"
    fi
    grep -Eq '^Active:[[:space:]]+yes' <<<"$info" && return 0
    virsh -q -c "$uri" net-start "$LAB_NETWORK" >/dev/null ||
        die "host ${host^^}: virsh net-start $LAB_NETWORK failed; see $(daemon_log "$host" libvirtd)"
    log "host ${host^^}: network $LAB_NETWORK started (bridge mode on $LAB_BRIDGE)"
}

# network_bridge_down HOST LIBVIRTD_ALIVE(0|1): without libvirtd the host's
# definition goes with its state directory (nothing of it runs).
network_bridge_down() {
    local host=$1 alive=$2 uri
    uri=$(host_uri "$host")
    rm -f "$LAB_RUN_DIR/network-$host.xml-hash"
    ((alive)) || return 0
    virsh -c "$uri" net-info "$LAB_NETWORK" >/dev/null 2>&1 || return 0
    virsh -q -c "$uri" net-destroy "$LAB_NETWORK" >/dev/null 2>&1 || true
    virsh -q -c "$uri" net-undefine "$LAB_NETWORK" >/dev/null ||
        die "host ${host^^}: virsh net-undefine $LAB_NETWORK failed"
    log "host ${host^^}: network $LAB_NETWORK destroyed and undefined"
}

network_bridge_status() {
    local host=$1 info active
    if ! info=$(virsh -c "$(host_uri "$host")" --readonly net-info "$LAB_NETWORK" 2>/dev/null); then
        printf '  network   %s: NOT DEFINED\n' "$LAB_NETWORK"
        return 1
    fi
    active=$(awk '$1 == "Active:" {print $2}' <<<"$info")
    printf '  network   %s: active=%s, bridge mode on %s (DHCP leases on host A)\n' "$LAB_NETWORK" "$active" "$LAB_BRIDGE"
    [[ $active == yes ]]
}
