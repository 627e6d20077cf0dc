#!/usr/bin/env bash
# Proves the Vagrant VM on this machine, offline from any box registry (`make vm-check`):
# builds a libvirt box from Debian packages (scripts/vm/build-box.sh, cached in .cache/vm-check),
# `vagrant up --provider libvirt` on KVM with the repository's own Vagrantfile (so
# scripts/setup.sh sets the VM up), runs `sudo make run` (enterprise-firewall) and
# home-nat-both with a Chromium viewer and with a kvs-js viewer inside it, copies their
# result documents back and checks them, then destroys the VM and checks that no libvirt
# domain, network, pool or volume and no process it started is left. Each step prints its
# time; any failure exits non-zero, after the same clean-up (also on Ctrl-C and SIGTERM).
# Before the first run it times one CPU-bound workload here and in the VM: the lab in the VM
# runs with ICE_LAB_SLOWDOWN set to the ratio (an emulated CPU measured 14-25 times slower).
#
#   scripts/vm-check.sh                  the whole check
#   scripts/vm-check.sh --kvm-works      exit 0 where /dev/kvm can create a VM (.ci/run runs the
#                                        check there: on hardware KVM, else on an emulated CPU)
#   scripts/vm-check.sh --clean          only remove what an earlier check left
#
# Environment: ICE_LAB_VM_ACCEL=kvm|tcg picks the accelerator (default: kvm where hardware KVM
# works, else QEMU's CPU emulation, many times slower). ICE_LAB_VM_BOX=provisioned|blank picks
# the box: provisioned (the default) has had scripts/setup.sh run in it while it was built, at
# this host's speed, so the set-up in the VM finds everything installed and takes seconds;
# blank is Debian alone, and the VM installs every package itself (the way a downloaded box
# is set up; under QEMU's emulation that takes about twenty minutes). Either way `vagrant up`
# runs scripts/setup.sh in the VM. ICE_LAB_VM_CACHE=DIR keeps a copy of the built box outside
# the clone (a speed-up for fresh clones; the check works without it). ICE_LAB_VM_CHECK_COMMAND=CMD runs
# CMD in /vagrant inside the VM (as root) after the checks, its output shown (benchmarks).
# The host's packages (vagrant, vagrant-libvirt, libvirt, QEMU, mmdebstrap, ...) are installed
# here when missing, not by scripts/setup.sh: only this check needs them.
set -euo pipefail
set -m

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/vm/registry-config.sh
. "${REPO}/scripts/vm/registry-config.sh"
CACHE="${REPO}/.cache/vm-check"
NAME=ice-lab-vm-check                # every libvirt object of the check (scripts/vm/box.Vagrantfile)
DOMAIN="${NAME}-default"       # default_prefix + the machine's name
POOL_DIR="/var/lib/libvirt/images/${NAME}"
VM_NET=192.168.125.0/24
BOX_NAME=ice-lab/debian-12-local
BOX_KIND="${ICE_LAB_VM_BOX:-provisioned}"
SLOWDOWN=1              # the VM's CPU against this host's (measure_slowdown): ICE_LAB_SLOWDOWN in it
# What a provisioned box's set-up is made of: a change of any builds the box again (the set-up
# in the VM would catch up by itself, but at the emulated CPU's speed).
SETUP_INPUTS=(scripts/setup.sh scripts/vm/provision-box.sh pyproject.toml lab/peers/page/package.json
    lab/peers/page/package-lock.json lab/peers/page/kvs_js.aws-sdk.mjs)
VIRSH=(virsh --quiet -c qemu:///system)
HOST_PACKAGES=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86
    qemu-utils mmdebstrap syslinux syslinux-common mtools dosfstools e2fsprogs fdisk rsync
    openssh-client dnsmasq-base iptables nftables python3)

FAILED_CHECKS=()        # the checks in the VM that failed (step --check)
STARTED_DAEMONS=()      # pids of libvirtd/virtlogd when this check started them
CHILD=""                # the process group of the step running now
CURRENT_STEP=""
STEP_START=0
IP_FORWARD_BEFORE=""
KVM_MODE_BEFORE=""      # /dev/kvm's mode and owner when this check had to open it to QEMU
TABLES_BEFORE=""        # the nftables tables there were before libvirt added its own
CHECK_START=$SECONDS

say() { echo "vm-check: $*"; }
alive() {
    # A daemon that left its parent is reaped by init; where init does not reap, an ended one
    # stays a zombie, which `kill -0` still finds.
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state:0:1}" != Z ]
}
fail() { echo "vm-check: FAILED: $*" >&2; exit 1; }

export VAGRANT_HOME="${CACHE}/vagrant.d"
export VAGRANT_DOTFILE_PATH="${CACHE}/dot-vagrant"
export VAGRANT_CWD="$REPO"
export VAGRANT_CHECKPOINT_DISABLE=1
export VAGRANT_DEFAULT_PROVIDER=libvirt
export ICE_LAB_BOX="$BOX_NAME"
export LIBVIRT_DEFAULT_URI=qemu:///system

hardware_kvm() {
    # KVM backed by the CPU's own virtualisation (kvm_intel, kvm_amd), which runs a stock
    # kernel at native speed. Some machines' /dev/kvm is another kind: kvm_pvm (this project's
    # machines: nested, "pagetable-based" virtualisation) runs only guest kernels built for it
    # and emulates a stock one instruction by instruction, so a Debian kernel had not printed
    # its first line after 3 minutes there.
    [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ] || return 1
    [ ! -d /sys/module/kvm_pvm ] && kvm_works
}

choose_accel() {
    # kvm where hardware KVM works, else QEMU's emulation (tcg); ICE_LAB_VM_ACCEL picks one.
    case "${ICE_LAB_VM_ACCEL:-}" in
        kvm | tcg) ;;
        "") if hardware_kvm; then ICE_LAB_VM_ACCEL=kvm; else ICE_LAB_VM_ACCEL=tcg; fi ;;
        *) echo "vm-check: ICE_LAB_VM_ACCEL must be kvm or tcg, not '${ICE_LAB_VM_ACCEL}'" >&2; exit 2 ;;
    esac
    case "$BOX_KIND" in
        provisioned | blank) ;;
        *) echo "vm-check: ICE_LAB_VM_BOX must be provisioned or blank, not '${BOX_KIND}'" >&2; exit 2 ;;
    esac
    export ICE_LAB_VM_ACCEL
    if [ "$ICE_LAB_VM_ACCEL" = kvm ]; then
        kvm_works || fail "/dev/kvm cannot create a VM here (ICE_LAB_VM_ACCEL=tcg emulates the CPU)"
        say "accelerator: kvm"
    else
        say "accelerator: tcg (QEMU emulates the CPU: no hardware KVM here$([ -d /sys/module/kvm_pvm ] && echo ", /dev/kvm is kvm_pvm"); slow)"
    fi
}

measure_slowdown() {
    # How many times slower the VM's CPU is than this host's: one CPU-bound workload
    # (python3 -m lab.core.slowdown, the standard library alone) timed here and in the VM.
    # The lab in the VM gets it as ICE_LAB_SLOWDOWN, which stretches every wait of its own
    # and of its timing profile (an emulated CPU measured 14-25 times slower; the lab's limits
    # were set on ordinary machines). Under 2 (hardware KVM) the lab runs as it is.
    local here vm
    here="$(cd "$REPO" && python3 -S -m lab.core.slowdown)"
    vm="$(in_vm "python3 -S -m lab.core.slowdown" | tr -d '\r' | tail -n 1)"
    SLOWDOWN="$(python3 -c 'import sys
ratio = float(sys.argv[2]) / float(sys.argv[1])
print(f"{ratio:.1f}" if ratio >= 2 else "1")' "$here" "$vm")"
    say "CPU workload: ${here} s here, ${vm} s in the VM: the lab in the VM runs with ICE_LAB_SLOWDOWN=${SLOWDOWN}"
}

kvm_works() {
    # /dev/kvm may exist yet refuse to make VMs (nested virtualisation off): ask it for one.
    python3 - <<'EOF'
import fcntl, os, sys
try:
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    if fcntl.ioctl(kvm, 0xAE00) != 12:  # KVM_GET_API_VERSION
        sys.exit(1)
    os.close(fcntl.ioctl(kvm, 0xAE01, 0))  # KVM_CREATE_VM
except OSError:
    sys.exit(1)
EOF
}

step() {
    # step TITLE COMMAND...: runs one step in a process group of its own (job control, set -m),
    # in the background, waiting for it, so that a signal reaches the trap at once and the
    # clean-up can end exactly that group; prints how long it took; fails the check on error.
    # step --here TITLE FUNCTION runs it in this shell instead, for the steps that record what
    # the clean-up must undo (a subshell would lose it); an error there ends the script, and
    # on_exit names the step. Neither runs the step in an `||` or `if` context, where bash
    # would ignore set -e inside it. step --check TITLE COMMAND... is a check in the VM: its
    # failure is recorded (FAILED_CHECKS) and the next check still runs, so one run of this
    # script says which of them fail; main fails after the last one.
    local here=0 check=0 status=0
    [ "$1" = --here ] && { here=1; shift; }
    [ "$1" = --check ] && { check=1; shift; }
    CURRENT_STEP="$1"
    STEP_START=$SECONDS
    shift
    say "--- ${CURRENT_STEP}"
    if [ "$here" -eq 1 ]; then
        "$@"
    else
        "$@" &
        CHILD=$!
        set +e
        wait "$CHILD"
        status=$?
        set -e
        CHILD=""
        if [ "$status" -ne 0 ] && [ "$check" -eq 1 ]; then
            say "--- ${CURRENT_STEP}: FAILED (exit ${status}) after $((SECONDS - STEP_START)) s"
            FAILED_CHECKS+=("$CURRENT_STEP")
            CURRENT_STEP=""
            return 0
        fi
        [ "$status" -eq 0 ] || exit 1
    fi
    say "--- ${CURRENT_STEP}: ok in $((SECONDS - STEP_START)) s"
    CURRENT_STEP=""
}

install_host_packages() {
    local missing=() pkg status
    declare -A installed=()
    while read -r pkg status; do
        [ "$status" = "install ok installed" ] && installed["$pkg"]=1
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "${HOST_PACKAGES[@]}" 2>/dev/null || true)
    for pkg in "${HOST_PACKAGES[@]}"; do
        [ -n "${installed[$pkg]:-}" ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && { say "host packages: all present"; return 0; }
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

start_daemon() {
    # libvirtd and virtlogd, started here when not running (machines without systemd); the
    # ones this check starts are stopped by it at the end, by pid.
    local daemon="$1" pidfile="/run/$1.pid" pid
    if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then return 0; fi
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$daemon" 2>/dev/null; then
        return 0
    fi
    "/usr/sbin/${daemon}" --daemon --pid-file "$pidfile"
    for _ in $(seq 1 50); do
        [ -s "$pidfile" ] && pid="$(cat "$pidfile")" && alive "$pid" && break
        sleep 0.1
    done
    [ -n "${pid:-}" ] || fail "${daemon} did not start"
    STARTED_DAEMONS+=("$pid")
    say "started ${daemon} (pid ${pid})"
}

open_kvm_to_qemu() {
    # libvirt runs QEMU as libvirt-qemu (group kvm); udev gives /dev/kvm to that group on a
    # usual Debian, but machines without udev leave it root's alone. Then the check opens it to
    # the group for its run, and puts it back afterwards.
    if ! runuser -u libvirt-qemu -- test -r /dev/kvm -a -w /dev/kvm 2>/dev/null; then
        KVM_MODE_BEFORE="$(stat -c '%a %U:%G' /dev/kvm)"
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
        say "/dev/kvm opened to group kvm for QEMU (was ${KVM_MODE_BEFORE})"
    fi
}

restore_kvm_mode() {
    [ -n "$KVM_MODE_BEFORE" ] || return 0
    chown "${KVM_MODE_BEFORE#* }" /dev/kvm && chmod "${KVM_MODE_BEFORE%% *}" /dev/kvm
    KVM_MODE_BEFORE=""
}

libvirt_only_tables() {
    # Tables that appeared during the check and hold nothing but libvirt's (now empty) chains
    # and the jumps to them: what starting a libvirt network leaves behind in iptables-nft.
    local table
    while read -r table; do
        grep -qxF "$table" <<<"$TABLES_BEFORE" && continue
        case "$table" in "table ip "* | "table ip6 "*) ;; *) continue ;; esac
        nft list $table 2>/dev/null | awk '
            /^[[:space:]]*(table|chain|type|})/ || /^[[:space:]]*$/ { next }
            /jump LIBVIRT_[A-Z]+$/ { next }
            { other = 1 }
            END { exit other }' && echo "$table"
    done < <(nft list tables 2>/dev/null)
    return 0
}

remove_libvirt_tables() {
    local table
    while read -r table; do
        [ -n "$table" ] && nft delete $table 2>/dev/null || true
    done < <(libvirt_only_tables)
}

start_libvirt() {
    start_daemon virtlogd
    start_daemon libvirtd
    for _ in $(seq 1 50); do "${VIRSH[@]}" version >/dev/null 2>&1 && return 0; sleep 0.2; done
    fail "libvirtd does not answer on qemu:///system"
}

image_inputs_digest() {
    # What the disk image is made of: its builder, this host's registry configuration and, for
    # a provisioned box, the set-up's inputs. A change of any builds it again.
    local files
    mapfile -t files < <(registry_config_files)
    [ "$BOX_KIND" = provisioned ] && files+=("${SETUP_INPUTS[@]/#/${REPO}/}")
    cat "${REPO}/scripts/vm/build-box.sh" "${REPO}/scripts/vm/registry-config.sh" "${files[@]}" |
        sha256sum | cut -c1-16
}

ensure_image() {
    # ensure_image DIGEST: the disk image in .cache/vm-check/box/, built when missing; copied
    # from (and to) ICE_LAB_VM_CACHE when that is set.
    local digest="$1" image outside="" flags=()
    image="${CACHE}/box/debian-12-amd64-${BOX_KIND}-${digest}.qcow2"
    [ -n "${ICE_LAB_VM_CACHE:-}" ] && outside="${ICE_LAB_VM_CACHE}/${image##*/}"
    if [ ! -s "$image" ] && [ -n "$outside" ] && [ -s "$outside" ]; then
        say "disk image from ${outside}"
        cp "$outside" "${image}.tmp" && mv "${image}.tmp" "$image"
    fi
    if [ -s "$image" ]; then
        say "disk image cached: ${image#"${REPO}/"}"
        return 0
    fi
    rm -f "${CACHE}"/box/debian-12-amd64-"${BOX_KIND}"-*.qcow2
    [ "$BOX_KIND" = provisioned ] && flags+=(--provisioned)
    bash "${REPO}/scripts/vm/build-box.sh" "$image" "${flags[@]}"
    if [ -n "$outside" ]; then
        mkdir -p "$ICE_LAB_VM_CACHE"
        rm -f "${ICE_LAB_VM_CACHE}"/debian-12-amd64-"${BOX_KIND}"-*.qcow2
        cp "$image" "${outside}.tmp" && mv "${outside}.tmp" "$outside"
    fi
}

ensure_box() {
    # The box: the disk image, its metadata and scripts/vm/box.Vagrantfile, laid out in the
    # check's own VAGRANT_HOME as `vagrant box add` lays out a box without a version
    # (boxes/NAME/0/libvirt/), with the image hard-linked rather than packed into a tar and
    # unpacked again (two copies of a provisioned box's 3 GB took 150 s here); laid out again
    # when either changed.
    local digest box_digest image dir
    digest="$(image_inputs_digest)"
    ensure_image "$digest"
    image="${CACHE}/box/debian-12-amd64-${BOX_KIND}-${digest}.qcow2"
    box_digest="${digest}-$(sha256sum < "${REPO}/scripts/vm/box.Vagrantfile" | cut -c1-16)"
    dir="${VAGRANT_HOME}/boxes/${BOX_NAME//\//-VAGRANTSLASH-}"
    [ "$(cat "${CACHE}/box/added" 2>/dev/null)" = "$box_digest" ] && [ -s "${dir}/0/libvirt/box.img" ] &&
        return 0
    rm -f "${CACHE}/box/added"
    rm -rf "$dir"
    mkdir -p "${dir}/0/libvirt"
    ln "$image" "${dir}/0/libvirt/box.img" 2>/dev/null || cp "$image" "${dir}/0/libvirt/box.img"
    cp "${REPO}/scripts/vm/box.Vagrantfile" "${dir}/0/libvirt/Vagrantfile"
    printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' \
        "$(qemu-img info --output=json "$image" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"] >> 30)')" \
        > "${dir}/0/libvirt/metadata.json"
    VAGRANT_CWD="${CACHE}" vagrant box list | grep -q "^${BOX_NAME} " ||
        fail "Vagrant does not list the box ${BOX_NAME} laid out in ${dir}"
    echo "$box_digest" > "${CACHE}/box/added"
}

restrict_vm_network() {
    # The VM reaches what this host reaches, the package registries, over HTTP and HTTPS
    # through libvirt's NAT; its DNS and DHCP are libvirt's dnsmasq on the VM's network. Nothing
    # else leaves the VM's network. One nftables table of the check's own, deleted at the end.
    IP_FORWARD_BEFORE="$(cat /proc/sys/net/ipv4/ip_forward)"
    nft -f - <<EOF
table inet ${NAME//-/_}
delete table inet ${NAME//-/_}
table inet ${NAME//-/_} {
    chain forward {
        type filter hook forward priority -10; policy accept;
        ip daddr ${VM_NET} ct state established,related accept
        ip saddr ${VM_NET} ct state established,related accept
        ip saddr ${VM_NET} tcp dport { 80, 443 } accept
        ip saddr ${VM_NET} counter drop
        ip daddr ${VM_NET} counter drop
    }
    chain input {
        type filter hook input priority -10; policy accept;
        ip saddr ${VM_NET} ct state established,related accept
        ip saddr ${VM_NET} udp dport { 53, 67 } accept
        ip saddr ${VM_NET} tcp dport 53 accept
        ip saddr ${VM_NET} counter drop
    }
}
EOF
}

create_pool() {
    mkdir -p "$POOL_DIR"
    "${VIRSH[@]}" pool-create-as "$NAME" dir --target "$POOL_DIR" >/dev/null
}

# The VM's services came up: the boot finished with no failed unit (systemd's own verdict), and
# which of the set-up's services are enabled (none should be: scripts/setup.sh disables the
# distribution's coturn, squid and danted; the lab starts its own per run). Run in the VM.
# shellcheck disable=SC2016
SYSTEMD_CHECK='state=$(timeout 600 systemctl is-system-running --wait); echo "system: $state";
systemctl --no-legend --failed; for s in ssh coturn squid danted tayga; do
echo "$s: $(systemctl is-enabled $s 2>/dev/null)/$(systemctl is-active $s 2>/dev/null)"; done;
[ "$state" = running ]'

in_vm() {
    # One command in the VM, as root, in /vagrant; its output shown, its status returned.
    vagrant ssh --no-tty -c "cd /vagrant && sudo bash -c '$1'"
}

copy_back() {
    # copy_back VM-PATH HOST-PATH: a file from the VM (`--no-tty`: no CR LF line ends).
    vagrant ssh --no-tty -c "sudo cat '$1'" > "$2"
}

run_and_check() {
    # run_and_check NAME AGENT: home-nat-both with AGENT as the viewer, its result copied back
    # and checked.
    local name="$1" agent="$2"
    # results/ is the VM's own (the rsync copy leaves it out): made here on a fresh VM.
    in_vm "mkdir -p results && ICE_LAB_SLOWDOWN=${SLOWDOWN} .venv/bin/lab run home-nat-both --viewer ${agent} --json results/vm-check-${name}.json" &&
        copy_back "/vagrant/results/vm-check-${name}.json" "${CACHE}/results/${name}.json" &&
        python3 "${REPO}/scripts/vm/check_result.py" "${CACHE}/results/${name}.json" "$agent"
}

leftovers() {
    # Everything of the check's that still exists, one per line; nothing when clean.
    "${VIRSH[@]}" list --all --name 2>/dev/null | grep -x "$DOMAIN" | sed 's/^/domain /' || true
    "${VIRSH[@]}" net-list --all --name 2>/dev/null | grep -x "$NAME" | sed 's/^/network /' || true
    "${VIRSH[@]}" pool-list --all --name 2>/dev/null | grep -x "$NAME" | sed 's/^/pool /' || true
    "${VIRSH[@]}" vol-list default 2>/dev/null | grep -F "$NAME" | sed 's/^/volume /' || true
    [ -e "$POOL_DIR" ] && echo "directory ${POOL_DIR}"
    nft list table inet "${NAME//-/_}" >/dev/null 2>&1 && echo "nftables table inet ${NAME//-/_}"
    libvirt_only_tables | sed 's/^/libvirt firewall /'
    [ -n "$KVM_MODE_BEFORE" ] && echo "/dev/kvm mode not restored"
    pgrep -f "guest=${DOMAIN}" | sed 's/^/qemu process /' || true
    pgrep -f "/${NAME}.conf" | sed 's/^/dnsmasq process /' || true
    local pid
    for pid in "${STARTED_DAEMONS[@]}"; do alive "$pid" && echo "daemon ${pid}"; done
    return 0
}

remove_libvirt_objects() {
    # Idempotent: each object is removed if it exists, by its name, and only the check's.
    if "${VIRSH[@]}" dominfo "$DOMAIN" >/dev/null 2>&1; then
        "${VIRSH[@]}" destroy "$DOMAIN" >/dev/null 2>&1 || true
        "${VIRSH[@]}" undefine "$DOMAIN" --remove-all-storage --nvram >/dev/null 2>&1 ||
            "${VIRSH[@]}" undefine "$DOMAIN" >/dev/null 2>&1 || true
    fi
    if "${VIRSH[@]}" net-info "$NAME" >/dev/null 2>&1; then
        "${VIRSH[@]}" net-destroy "$NAME" >/dev/null 2>&1 || true
        "${VIRSH[@]}" net-undefine "$NAME" >/dev/null 2>&1 || true
    fi
    if "${VIRSH[@]}" pool-info "$NAME" >/dev/null 2>&1; then
        local volume
        for volume in $("${VIRSH[@]}" vol-list "$NAME" 2>/dev/null | awk '{print $1}'); do
            "${VIRSH[@]}" vol-delete --pool "$NAME" "$volume" >/dev/null 2>&1 || true
        done
        "${VIRSH[@]}" pool-destroy "$NAME" >/dev/null 2>&1 || true
        "${VIRSH[@]}" pool-undefine "$NAME" >/dev/null 2>&1 || true
    fi
    rm -rf "$POOL_DIR"
}

stop_started_daemons() {
    local pid
    for pid in "${STARTED_DAEMONS[@]}"; do
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    done
    STARTED_DAEMONS=()
}

report_dropped() {
    # What the VM tried to reach beyond the registries (the firewall table's drop counters).
    local packets
    packets="$(nft list table inet "${NAME//-/_}" 2>/dev/null |
        sed -n 's/.*counter packets \([0-9]*\) .* drop$/\1/p' | awk '{n += $1} END {print n + 0}')" ||
        return 0
    [ -n "$packets" ] && nft list table inet "${NAME//-/_}" >/dev/null 2>&1 &&
        say "packets from or to the VM dropped by its firewall (neither registry traffic nor DNS/DHCP): ${packets}"
    return 0
}

clean_up() {
    # The VM first, through Vagrant (it also drops its network), then by name whatever Vagrant
    # left or never got to, the firewall table, the daemons this check started and the
    # forwarding setting libvirt turned on.
    report_dropped
    if [ -n "$CHILD" ]; then kill -TERM -- "-$CHILD" 2>/dev/null || true; sleep 1; kill -KILL -- "-$CHILD" 2>/dev/null || true; fi
    if "${VIRSH[@]}" version >/dev/null 2>&1 && command -v vagrant >/dev/null 2>&1; then
        remove_leftovers
    fi
    nft delete table inet "${NAME//-/_}" 2>/dev/null || true
    stop_started_daemons
    remove_libvirt_tables
    restore_kvm_mode
    if [ -n "$IP_FORWARD_BEFORE" ]; then echo "$IP_FORWARD_BEFORE" > /proc/sys/net/ipv4/ip_forward; fi
}

remove_leftovers() {
    # What an earlier, killed check may have left: the VM, its libvirt objects, the table.
    if [ -d "$VAGRANT_DOTFILE_PATH" ]; then timeout 300 vagrant destroy -f >/dev/null 2>&1 || true; fi
    rm -rf "$VAGRANT_DOTFILE_PATH"
    remove_libvirt_objects
    nft delete table inet "${NAME//-/_}" 2>/dev/null || true
}

verify_nothing_left() {
    local left
    left="$(leftovers)"
    [ -z "$left" ] || { printf '%s\n' "$left" >&2; fail "left behind (above)"; }
    say "nothing left: no domain, network, pool, volume, firewall table or process of the check"
}

on_exit() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$status" -ne 0 ]; then
        [ -n "$CURRENT_STEP" ] &&
            say "--- ${CURRENT_STEP}: FAILED (exit ${status}) after $((SECONDS - STEP_START)) s"
        say "cleaning up after the failure"
        clean_up
        local left
        left="$(leftovers)"
        [ -z "$left" ] || { echo "vm-check: could not remove:" >&2; printf '%s\n' "$left" >&2; }
        say "FAILED after $((SECONDS - CHECK_START)) s"
    fi
    exit "$status"
}

on_signal() {
    say "interrupted"
    exit 130
}

main() {
    [ "$(id -u)" -eq 0 ] || fail "needs root (libvirt's system instance, mmdebstrap, nftables)"
    choose_accel
    trap on_exit EXIT
    trap on_signal INT TERM
    mkdir -p "${CACHE}/results" "${CACHE}/box"
    rm -f "${CACHE}"/results/*.json
    step "host packages" install_host_packages
    # An earlier check's libvirt tables count as leftovers, not as the machine's own.
    TABLES_BEFORE="$(nft list tables 2>/dev/null | grep -vxF -f <(libvirt_only_tables; echo '#') || true)"
    # With tcg too: libvirt checks its cached QEMU capabilities (which found KVM) against
    # whether libvirt-qemu can open /dev/kvm; where it cannot, every look-up probes QEMU again
    # (4 s each here: 23 of them, about 100 s, while vagrant-libvirt defined and started the
    # domain; 0.05 s each with /dev/kvm open to the group). The domain still runs on tcg.
    step --here "/dev/kvm for QEMU" open_kvm_to_qemu
    step --here "libvirt" start_libvirt
    step --here "leftovers of an earlier check" remove_leftovers
    say "box: ${BOX_KIND} ($([ "$BOX_KIND" = provisioned ] && echo "scripts/setup.sh run in it at build time; ICE_LAB_VM_BOX=blank: the VM installs everything" || echo "Debian alone: the VM installs everything"))"
    step "box (Debian 12, built here from Debian packages when not cached)" ensure_box
    step --here "VM network restricted to the package registries" restrict_vm_network
    step "storage pool" create_pool
    step "vagrant up --no-provision (boot, rsync of the repository)" vagrant up --provider libvirt --no-provision
    step "vagrant provision (scripts/setup.sh in the VM)" vagrant provision
    step --check "systemd in the VM: every unit started" in_vm "$SYSTEMD_CHECK"
    step --check "netem in the VM's kernel" in_vm "modprobe sch_netem && lsmod | grep -w sch_netem"
    step --here "the VM's CPU against this host's" measure_slowdown
    step --check "sudo make run (enterprise-firewall, ICE_LAB_SLOWDOWN=${SLOWDOWN}) in the VM" \
        in_vm "ICE_LAB_SLOWDOWN=${SLOWDOWN} make run"
    step --check "Chromium viewer run in the VM, result checked here" run_and_check chromium chromium
    step --check "kvs-js viewer run in the VM, result checked here" run_and_check kvs-js kvs-js
    if [ -n "${ICE_LAB_VM_CHECK_COMMAND:-}" ]; then
        step "ICE_LAB_VM_CHECK_COMMAND in the VM" in_vm "$ICE_LAB_VM_CHECK_COMMAND"
    fi
    [ "${#FAILED_CHECKS[@]}" -eq 0 ] ||
        fail "$(printf '%s; ' "${FAILED_CHECKS[@]}")(${#FAILED_CHECKS[@]} of the checks in the VM)"
    step "vagrant destroy" vagrant destroy -f
    step --here "clean-up" clean_up
    step --here "nothing left" verify_nothing_left
    say "passed in $((SECONDS - CHECK_START)) s; results in ${CACHE#"${REPO}/"}/results/"
}

case "${1:-}" in
    "") main ;;
    --kvm-works) kvm_works ;;
    --clean)
        [ "$(id -u)" -eq 0 ] || fail "needs root"
        start_libvirt
        remove_leftovers
        clean_up
        verify_nothing_left ;;
    *) echo "usage: scripts/vm-check.sh [--kvm-works | --clean]" >&2; exit 2 ;;
esac
