# shellcheck shell=bash
# lab/lab reset: the lab back to its baseline, whatever a person or a failed
# test run left, saying what it cleaned (one line each; "nothing to clean"
# otherwise). Idempotent; a few seconds when there is nothing to do.
#
# 1. OpenStack (lib/reset.py, one Python process with os-onboard's package):
#    os-onboard's records of lab guests released with `os-onboard unmanage`
#    (never a Nova delete, which stops the guest); os-onboard's orphans
#    (ports, volume records, allocations whose server is gone) removed as
#    `os-onboard cleanup` does; a benchmark's leftover fake-driver compute
#    service deleted.
# 2. The guests, on the hypervisors (after 1: Nova no longer knows them):
#    * a guest Nova redefined as `instance-<n>` (a hard reboot, a Nova stop and
#      start or migration of an adopted guest regenerates the domain) is found
#      by its MAC. libvirt 9 renames only inactive domains, and that domain
#      also logs its console to Nova's file, not the lab's: it is destroyed,
#      undefined and the guest is defined and started again from the lab's
#      own definition on host A (a controlled restart: a new QEMU, fresh
#      disks, as `up` makes a new guest). The lab's guests are test
#      fixtures; the tests assert QEMU PID continuity within a test, and
#      reset runs before the suite, never inside a test;
#    * a guest on host B is live-migrated back with `lab/lab migrate` (no
#      restart); one shut off there is moved by its definition;
#    * a guest that should run (lab/guests.conf) and does not is started,
#      resumed if paused; one that should be off and runs is destroyed;
#    * leftover scratch domains of test modules (lab-* not in the config)
#      and Nova-made domains no Nova server owns are destroyed and undefined.
#
# Settings: LAB_ONBOARD_BIN (the directory of the os-onboard command and its
# Python; default <repo>/.venv/bin, else the one on PATH).

RESET_CLEANED=0

reset_say() {
    log "reset: $*"
    RESET_CLEANED=$((RESET_CLEANED + 1))
}

# The os-onboard command and its Python.
reset_onboard_bin() {
    local dir=${LAB_ONBOARD_BIN:-}
    if [[ -z $dir ]]; then
        if [[ -x $LAB_DIR/../.venv/bin/os-onboard ]]; then
            dir=$(cd "$LAB_DIR/../.venv/bin" && pwd)
        elif command -v os-onboard >/dev/null; then
            dir=$(dirname "$(command -v os-onboard)")
        fi
    fi
    [[ -n $dir && -x $dir/os-onboard && -x $dir/python ]] ||
        die "reset: no os-onboard command (make venv, or set LAB_ONBOARD_BIN to its bin directory)"
    printf '%s' "$dir"
}

# reset_openstack SERVERS_FILE: releases, orphans, bench services; writes the
# UUIDs of the Nova servers left afterwards to SERVERS_FILE.
reset_openstack() {
    local out=$1 bin line rc=0 guest
    local -a args=()
    os_pid keystone >/dev/null && os_pid nova-api >/dev/null ||
        { log "reset: OpenStack is not running; its records are left as they are"; return 0; }
    bin=$(reset_onboard_bin) || return 1
    for guest in "${G_ALL[@]}"; do args+=(--guest "$guest"); done
    # every URI a marker may name for hosts A and B
    args+=(--lab-uri "$LAB_HOST_A_URI" --lab-uri "$LAB_HOST_A_TCP_URI"
        --lab-uri "$LAB_HOST_B_URI" --lab-uri "$LAB_HOST_B_RO_URI" --lab-uri "$LAB_HOST_B_TCP_URI")
    # the vCenter simulator: its adopted VMs released too, then its legacy VMs
    # powered on in their home clusters (legacy-vc-NN: the NNth of LAB_VC_CLUSTERS, in turn)
    if daemon_pid "$LAB_VSPHERE_PIDFILE" vcsim-lab >/dev/null; then
        args+=(--lab-uri "$(vsphere_uri)" --vsphere-clusters "${LAB_VC_CLUSTERS:-DC0_C0 DC0_C1}")
        for ((guest = 1; guest <= LAB_VSPHERE_LEGACY; guest++)); do
            args+=(--vsphere-legacy "$(printf 'legacy-vc-%02d' "$guest")")
        done
    fi
    while IFS= read -r line; do
        case $line in
        cleaned:*) reset_say "${line#cleaned: }" ;;
        rc:*) [[ ${line#rc: } == 0 ]] || rc=1 ;;
        *) log "reset: $line" ;;
        esac
    done < <(
        eval "$(cmd_env --export)"
        export OS_ONBOARD_INSTANCES_PATH=$LAB_NOVA_INSTANCES_PATH
        # the demo's state store: its journal learns that the VMs were released
        export OS_ONBOARD_STATE_URL=${OS_ONBOARD_STATE_URL:-sqlite:///$LAB_STATE_DIR/demo-state.db}
        "$bin/python" "$LAB_DIR/lib/reset.py" "${args[@]}" --nova-host "$LAB_NOVA_HOST_A" \
            --onboard "$bin/os-onboard" --servers-out "$out" 2>&1 && echo "rc: 0" || echo "rc: $?"
    )
    [[ -s $out ]] || rc=1 # the helper writes it last
    return "$rc"
}

# reset_domains_of HOST: "name uuid" of every domain on HOST.
reset_domains_of() {
    local uri
    uri=$(host_uri "$1")
    virsh -q -c "$uri" --readonly list --all --uuid --name 2>/dev/null | awk 'NF == 2 {print $2, $1}'
}

# reset_find_by_mac MAC: "host name" of a domain that is not a lab guest but has MAC.
reset_find_by_mac() {
    local mac=$1 host name uuid
    for host in $(lab_hosts); do
        while read -r name uuid; do
            guest_is_lab "$name" && continue
            if virsh -q -c "$(host_uri "$host")" --readonly domiflist "$name" 2>/dev/null |
                awk '{print tolower($5)}' | grep -qxF "${mac,,}"; then
                printf '%s %s %s' "$host" "$name" "$uuid"
                return 0
            fi
        done < <(reset_domains_of "$host")
    done
    return 1
}

reset_destroy_undefine() {
    local uri=$1 name=$2
    virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
    if virsh -c "$uri" --readonly dominfo "$name" >/dev/null 2>&1; then
        virsh -q -c "$uri" undefine "$name" >/dev/null 2>&1 ||
            virsh -q -c "$uri" undefine --nvram "$name" >/dev/null
    fi
}

# reset_guests SERVERS_FILE: names, hosts and power states of the lab's guests.
reset_guests() {
    local servers=$1 name host uri state found fhost fname fuuid mac xml fresh
    local -a started=()
    for name in "${G_SELECTED[@]}"; do
        fresh=0
        host=$(guest_host "$name")
        if [[ -z $host ]]; then
            mac=${G_MACS[$name]%%,*}
            if found=$(reset_find_by_mac "$mac"); then
                read -r fhost fname fuuid <<<"$found"
                if ! [[ -s $servers ]] || grep -qxF "$fuuid" "$servers"; then
                    log "reset: $name runs as $fname ($fuuid) on host ${fhost^^}, and Nova may still have a server $fuuid: left alone (os-onboard unmanage $fuuid, then lab/lab reset)"
                    continue
                fi
                reset_destroy_undefine "$(host_uri "$fhost")" "$fname"
                # Nova's instance directory of that UUID (its console log, the disk link
                # unmanage kept because the domain used it): no server, no domain now
                if [[ -n ${LAB_OS_DATA:-} && -d $LAB_OS_DATA/nova/instances/$fuuid ]]; then
                    rm -rf "${LAB_OS_DATA:?}/nova/instances/$fuuid"
                fi
                guest_define "$LAB_HOST_A_URI" "$name"
                reset_say "$name: was the domain $fname ($fuuid) on host ${fhost^^}, which Nova had made of it (a hard reboot, stop/start or migration of the adopted guest); a running domain cannot be renamed: destroyed and undefined it, defined $name again from the lab's definition on host A (fresh disks)"
            else
                guest_define "$LAB_HOST_A_URI" "$name"
                reset_say "$name: was defined on no host; defined it on host A"
            fi
            host=a fresh=1
        elif [[ $host != a ]]; then
            uri=$(host_uri "$host")
            state=$(guest_state "$uri" "$name")
            if [[ $state == running ]]; then
                cmd_migrate "$name" --to a
                reset_say "$name: was running on host ${host^^}; live-migrated it back to host A (lab/lab migrate, same guest, new QEMU)"
            else
                xml=$(mktemp)
                virsh -q -c "$uri" --readonly dumpxml --inactive "$name" >"$xml"
                virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
                virsh -q -c "$uri" undefine "$name" >/dev/null
                virsh -q -c "$LAB_HOST_A_URI" define "$xml" >/dev/null
                rm -f "$xml"
                reset_say "$name: was $state on host ${host^^}; moved its definition to host A"
            fi
            host=a
        fi
        uri=$(host_uri "$host")
        state=$(guest_state "$uri" "$name")
        if [[ ${G_STATE[$name]} == running ]]; then
            case $state in
            running) ;;
            paused)
                virsh -q -c "$uri" resume "$name" >/dev/null
                reset_say "$name: was paused; resumed it"
                ;;
            *)
                guest_start "$host" "$name"
                started+=("$name")
                ((fresh)) || reset_say "$name: was $state; started it"
                ;;
            esac
        elif [[ $state != "shut off" && $state != undefined ]]; then
            virsh -q -c "$uri" destroy "$name" >/dev/null
            reset_say "$name: was $state but is off in lab/guests.conf; destroyed it (powered off)"
        fi
    done
    reset_leftover_domains "$servers"
    if ((${#started[@]})); then
        # guests_wait waits for every running selected guest: all of them are up by now
        guests_wait
    fi
}

# Domains no lab guest and no Nova server owns: scratch guests of test
# modules (lab-*) a failed run left, and domains Nova made (instance-*)
# whose server is gone (released, or Nova's own and deleted).
reset_leftover_domains() {
    local servers=$1 host name uuid
    for host in $(lab_hosts); do
        while read -r name uuid; do
            guest_is_lab "$name" && continue
            case $name in
            lab-*) ;;
            instance-*)
                # no server list (OpenStack down): a Nova domain may be Nova's own; keep it
                [[ -n $servers && -s $servers ]] || continue
                grep -qxF "$uuid" "$servers" && continue
                ;;
            *) continue ;;
            esac
            reset_destroy_undefine "$(host_uri "$host")" "$name"
            if [[ -n ${LAB_OS_DATA:-} && -d $LAB_OS_DATA/nova/instances/$uuid ]]; then
                rm -rf "${LAB_OS_DATA:?}/nova/instances/$uuid"
            fi
            reset_say "removed the leftover domain $name ($uuid) on host ${host^^} (destroyed, undefined)"
        done < <(reset_domains_of "$host")
    done
}

# The lock a functional test session holds (shared) while it runs
# (tests/functional/conftest.py): a reset would release what that session
# adopted and remove its scratch guests, so reset wants it exclusively. The
# session that runs reset itself holds it exclusively already and says so
# (LAB_RESET_IN_SESSION=1); --force skips the check.
reset_session_lock() {
    [[ ${LAB_RESET_IN_SESSION:-0} == 1 || ${1:-} == --force ]] && return 0
    exec 8>>"$LAB_RUN_DIR/functional-session.lock"
    flock -n -x 8 || die "reset: a functional test session runs on this lab ($LAB_RUN_DIR/functional-session.lock): a reset would release what it adopted and remove its scratch guests; wait for it to end (or --force)"
}

cmd_reset() {
    local t0 servers rc=0
    need_root reset
    lab_dirs
    reset_session_lock "$@"
    lab_lock
    # Held until reset exits: the commands it calls (cmd_migrate) must not take it
    # again (a new `exec 9>` would drop it for a moment, and another lab command or a
    # second reset would slip in between: seen with two test sessions starting at once).
    lab_lock() { :; }
    guests_load
    t0=$(lab_now_us)
    host_alive a || die "reset: host A's libvirtd is not running: run 'lab/lab up'"
    servers=$(mktemp)
    # shellcheck disable=SC2064 # the path now
    trap "rm -f '$servers'" EXIT
    reset_openstack "$servers" || rc=1
    ((rc == 0)) || : >"$servers"
    reset_guests "$servers"
    if ((RESET_CLEANED == 0)); then
        log "reset: nothing to clean ($(lab_since "$t0")s)"
    else
        log "reset: cleaned $RESET_CLEANED thing(s) in $(lab_since "$t0")s"
    fi
    ((rc == 0)) || die "reset: the OpenStack side did not finish (see the lines above)"
}
