# shellcheck shell=bash
# The tiny lab guest: a stock Debian kernel plus a busybox-static initramfs.
#
# * Kernel: `apt-get download linux-image-<version>-amd64` + `dpkg-deb -x`
#   (never installed). The uncompressed vmlinux is cut out of the bzImage so
#   QEMU boots it through PVH and the guest skips ~4 s of XZ under TCG.
# * Initramfs: busybox-static, archived with busybox's own cpio applet, the
#   modules below (insmod'ed in dependency order by /init) and lab/guest/*.
# Built once into $LAB_CACHE_DIR; rebuilt only when an input changes.

LAB_GUEST_MODULES=(
    virtio_pci virtio_net virtio_blk virtio_scsi
    # soft dependencies of crc-t10dif / crc64-rocksoft (not in "depends="),
    # which sd_mod needs: load the generic implementations first.
    crct10dif_generic crc64_rocksoft_generic
    sd_mod
    # ACPI power button -> /dev/input/eventN -> busybox acpid -> poweroff
    button evdev
)

LAB_KERNEL_VMLINUX=$LAB_GUEST_DIR/vmlinux
LAB_KERNEL_INITRD=$LAB_GUEST_DIR/initramfs.cpio

# The kernel package: LAB_KERNEL_PKG, else the one cached before, else what
# linux-image-amd64 depends on in the current apt lists.
kernel_pkg() {
    local pkg
    if [[ -n ${LAB_KERNEL_PKG:-} ]]; then
        printf '%s' "$LAB_KERNEL_PKG"
        return
    fi
    if [[ -s $LAB_CACHE_DIR/kernel-pkg ]]; then
        pkg=$(<"$LAB_CACHE_DIR/kernel-pkg")
        if [[ -s $LAB_CACHE_DIR/$pkg/vmlinux ]]; then
            printf '%s' "$pkg"
            return
        fi
    fi
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
    if [[ -z $pkg ]]; then
        apt_update_once
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
    fi
    [[ -n $pkg ]] || die "cannot resolve the Debian kernel package (apt-cache depends linux-image-amd64); set LAB_KERNEL_PKG"
    printf '%s' "$pkg"
}

# Resolve LAB_GUEST_MODULES plus their "depends=" closure into load order.
# $1: the extracted lib/modules/<version> directory. Prints relative paths.
modules_resolve() {
    local mdir=$1 f base name
    declare -gA _MOD_PATH=() _MOD_SEEN=()
    _MOD_ORDER=()
    while IFS= read -r f; do
        base=${f##*/}
        name=${base%%.ko*}
        _MOD_PATH[${name//-/_}]=$f
    done < <(cd "$mdir" && find kernel -name '*.ko*')
    for name in "${LAB_GUEST_MODULES[@]}"; do
        _modules_visit "$mdir" "${name//-/_}"
    done
    printf '%s\n' "${_MOD_ORDER[@]}"
}

_modules_visit() {
    local mdir=$1 name=$2 path deps d
    [[ -n ${_MOD_SEEN[$name]:-} ]] && return 0
    _MOD_SEEN[$name]=1
    path=${_MOD_PATH[$name]:-}
    [[ -n $path ]] || die "kernel module $name not found under $mdir"
    deps=$(_modinfo_field "$mdir/$path" depends)
    for d in ${deps//,/ }; do
        _modules_visit "$mdir" "${d//-/_}"
    done
    _MOD_ORDER+=("$path")
}

_modinfo_field() {
    local f=$1 key=$2
    case $f in
    *.ko.xz) xz -dc "$f" ;;
    *.ko.zst) zstd -dcq "$f" ;;
    *) cat "$f" ;;
    esac | tr '\0' '\n' | sed -n "s/^$key=//p" | head -n1
}

# Cut the uncompressed ELF vmlinux out of a bzImage (XZ payload).
kernel_extract_vmlinux() {
    local bz=$1 out=$2 m off
    m=$(LC_ALL=C grep -m1 -obUaP '\xFD7zXZ\x00' "$bz" | tr -d '\0') || die "no XZ payload found in $bz"
    off=${m%%:*}
    tail -c +$((off + 1)) "$bz" >"$out.xz"
    xz -dcq --single-stream "$out.xz" >"$out.tmp" || true
    rm -f "$out.xz"
    [[ $(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] ||
        die "extracting vmlinux from $bz did not give an ELF file"
    mv "$out.tmp" "$out"
}

# Download and unpack the kernel package into $LAB_CACHE_DIR/<pkg> (vmlinux,
# config, the needed modules and their load order).
kernel_fetch() {
    local pkg=$1 kdir=$LAB_CACHE_DIR/$1 tmp deb mdir ver want t0 m
    want=$(printf '%s\n' "${LAB_GUEST_MODULES[@]}")
    if [[ -s $kdir/vmlinux && -s $kdir/modules.order && $(cat "$kdir/modules.wanted" 2>/dev/null) == "$want" ]]; then
        return 0
    fi
    t0=$(lab_now_us)
    mkdir -p "$kdir"
    deb=$(find "$kdir" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
    if [[ -z $deb ]]; then
        tmp=$(mktemp -d "$LAB_CACHE_DIR/dl.XXXXXX")
        chmod 755 "$tmp"
        # _apt must be able to write here, or apt warns about an unsandboxed download.
        id _apt >/dev/null 2>&1 && chown _apt "$tmp"
        log "guest image: apt-get download $pkg"
        if ! (cd "$tmp" && apt-get download "$pkg" >>"$LAB_LOG_DIR/apt.log" 2>&1); then
            apt_update_once
            (cd "$tmp" && apt-get download "$pkg" >>"$LAB_LOG_DIR/apt.log" 2>&1) ||
                die "apt-get download $pkg failed; see $LAB_LOG_DIR/apt.log"
        fi
        mv "$tmp"/*.deb "$kdir/"
        rm -rf "$tmp"
        deb=$(find "$kdir" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
    fi
    tmp=$(mktemp -d "$LAB_CACHE_DIR/x.XXXXXX")
    dpkg-deb -x "$deb" "$tmp"
    mdir=$(find "$tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)
    ver=${mdir##*/}
    kernel_extract_vmlinux "$tmp/boot/vmlinuz-$ver" "$kdir/vmlinux"
    cp "$tmp/boot/config-$ver" "$kdir/config"
    rm -rf "$kdir/modules"
    mkdir -p "$kdir/modules"
    : >"$kdir/modules.order.tmp"
    modules_resolve "$mdir" >"$tmp/modules.paths"
    while IFS= read -r m; do
        case $m in
        *.ko.xz) xz -dc "$mdir/$m" >"$kdir/modules/$(basename "$m" .xz)" ;;
        *.ko.zst) zstd -dcq "$mdir/$m" >"$kdir/modules/$(basename "$m" .zst)" ;;
        *) cp "$mdir/$m" "$kdir/modules/" ;;
        esac
        basename "${m%.xz}" .zst >>"$kdir/modules.order.tmp"
    done <"$tmp/modules.paths"
    rm -rf "$tmp"
    printf '%s\n' "$ver" >"$kdir/version"
    printf '%s\n' "$want" >"$kdir/modules.wanted"
    mv "$kdir/modules.order.tmp" "$kdir/modules.order"
    printf '%s\n' "$pkg" >"$LAB_CACHE_DIR/kernel-pkg"
    log "guest image: kernel $ver unpacked in $(lab_since "$t0")s ($(wc -l <"$kdir/modules.order") modules: $(tr '\n' ' ' <"$kdir/modules.order"))"
}

# Hash of everything the initramfs is built from.
initramfs_inputs_hash() {
    local kdir=$1
    {
        sha256sum /bin/busybox "$LAB_DIR"/guest/* "$kdir"/modules/*.ko "$kdir/modules.order"
        declare -f initramfs_build
    } | sha256sum | cut -d' ' -f1
}

initramfs_build() {
    local kdir=$1 out=$2 stage applet
    stage=$(mktemp -d "$LAB_CACHE_DIR/initramfs.XXXXXX")
    mkdir -p "$stage"/{bin,dev,proc,sys,run,tmp,etc/udhcpc,etc/acpi/PWRF,lib/modules,var/log,www}
    cp /bin/busybox "$stage/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [[ $applet == busybox ]] || ln -s busybox "$stage/bin/$applet"
    done
    ln -s bin "$stage/sbin"
    mknod -m 600 "$stage/dev/console" c 5 1
    mknod -m 666 "$stage/dev/null" c 1 3
    install -m 755 "$LAB_DIR/guest/init" "$stage/init"
    install -m 755 "$LAB_DIR/guest/udhcpc.script" "$stage/etc/udhcpc/default.script"
    install -m 755 "$LAB_DIR/guest/acpi-power" "$stage/etc/acpi/PWRF/00000080"
    cp "$kdir"/modules/*.ko "$stage/lib/modules/"
    cp "$kdir/modules.order" "$stage/etc/modules.order"
    # Uncompressed: the kernel would otherwise inflate it under TCG.
    (cd "$stage" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) >"$out.tmp"
    rm -rf "$stage"
    mv "$out.tmp" "$out"
}

guest_image_ensure() {
    local pkg kdir hash t0
    t0=$(lab_now_us)
    pkg=$(kernel_pkg)
    kdir=$LAB_CACHE_DIR/$pkg
    kernel_fetch "$pkg"
    if [[ ! -s $LAB_KERNEL_VMLINUX || ! $LAB_KERNEL_VMLINUX -ef $kdir/vmlinux ]]; then
        rm -f "$LAB_KERNEL_VMLINUX"
        ln "$kdir/vmlinux" "$LAB_KERNEL_VMLINUX" 2>/dev/null || cp "$kdir/vmlinux" "$LAB_KERNEL_VMLINUX"
    fi
    hash=$(initramfs_inputs_hash "$kdir")
    if [[ -s $LAB_KERNEL_INITRD && $(cat "$LAB_GUEST_DIR/initramfs.hash" 2>/dev/null) == "$hash" ]]; then
        log "guest image: cached ($pkg, $LAB_GUEST_DIR)"
        return 0
    fi
    initramfs_build "$kdir" "$LAB_KERNEL_INITRD"
    printf '%s\n' "$hash" >"$LAB_GUEST_DIR/initramfs.hash"
    printf '%s\n' "$pkg" >"$LAB_GUEST_DIR/kernel-pkg"
    log "guest image: built in $(lab_since "$t0")s: $LAB_KERNEL_VMLINUX ($(($(stat -c %s "$LAB_KERNEL_VMLINUX") >> 20)) MiB), $LAB_KERNEL_INITRD ($(($(stat -c %s "$LAB_KERNEL_INITRD") >> 10)) KiB)"
}
