# shellcheck shell=bash
# Debian packages the lab needs. Installed idempotently: `apt-get update` runs
# only when something is missing, at most once per run.

LAB_APT_PACKAGES=(
    libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
    qemu-system-x86 qemu-utils dnsmasq-base busybox-static
    libvirt-dev pkg-config iptables
)

LAB_APT_UPDATED=0

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

apt_update_once() {
    ((LAB_APT_UPDATED)) && return 0
    log "apt-get update (log: $LAB_LOG_DIR/apt.log)"
    apt-get -o DPkg::Lock::Timeout=300 update >>"$LAB_LOG_DIR/apt.log" 2>&1 ||
        die "apt-get update failed; see $LAB_LOG_DIR/apt.log"
    LAB_APT_UPDATED=1
}

# packages_ensure [PKG...]: install whatever is missing (default: the lab set).
packages_ensure() {
    local pkgs=("$@") missing=() p policy_created=0 rc=0
    ((${#pkgs[@]})) || pkgs=("${LAB_APT_PACKAGES[@]}")
    for p in "${pkgs[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all ${#pkgs[@]} present"
        return 0
    fi
    log "packages: installing ${missing[*]}"
    apt_update_once
    # No init system here: keep the maintainer scripts from starting daemons
    # (the lab starts libvirtd/virtlogd itself, with its own config).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends "${missing[@]}" >>"$LAB_LOG_DIR/apt.log" 2>&1 || rc=$?
    ((policy_created)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (rc $rc); see $LAB_LOG_DIR/apt.log"
    log "packages: installed ${missing[*]}"
}
