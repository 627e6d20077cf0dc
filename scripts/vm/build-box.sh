#!/usr/bin/env bash
# Builds the disk image of a Vagrant box for the libvirt provider from Debian packages alone,
# for machines that cannot download a box (scripts/vm-check.sh packs it with
# scripts/vm/box.Vagrantfile into the box): Debian 12 made by mmdebstrap, on a disk
# image with a BIOS boot loader (SYSLINUX on a small FAT partition) and an ext4 root, a
# `vagrant` user with passwordless sudo and Vagrant's public key, DHCP on eth0, and the
# package-registry configuration of this host (apt sources and options, the CA certificates,
# pip's and npm's settings) so that scripts/setup.sh inside the VM installs packages the way
# this host does.
#
#   scripts/vm/build-box.sh OUTPUT.qcow2                 a blank box: the VM sets itself up
#   scripts/vm/build-box.sh OUTPUT.qcow2 --provisioned   scripts/setup.sh run in it already
#
# --provisioned runs the repository's scripts/setup.sh in the root file system while it is
# built (scripts/vm/provision-box.sh), at this host's speed; `vagrant up` runs it again in the
# VM, where it then finds everything installed.
#
# No loop device, mount or root file system of the host is touched: mke2fs fills the ext4
# file system from a directory, mtools and syslinux write the FAT one inside the image file.
# Needs root (mmdebstrap's root mode) and the packages scripts/vm-check.sh installs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm/registry-config.sh
. "${HERE}/registry-config.sh"
OUTPUT="${1:?usage: scripts/vm/build-box.sh OUTPUT.qcow2 [--provisioned]}"
PROVISIONED=0
case "${2:-}" in
    "") ;;
    --provisioned) PROVISIONED=1 ;;
    *) echo "usage: scripts/vm/build-box.sh OUTPUT.qcow2 [--provisioned]" >&2; exit 2 ;;
esac
SUITE=bookworm
ARCH="$(dpkg --print-architecture)"
# Sizes in MiB: the boot partition holds one kernel and its initramfs; the root file system
# has room for what scripts/setup.sh installs (about 3 GiB with Chromium) and the lab's runs.
BOOT_MIB=256
DISK_MIB=20480
ROOT_OFFSET_MIB=$((1 + BOOT_MIB))
ROOT_MIB=$((DISK_MIB - ROOT_OFFSET_MIB))
# Packages beyond the minimal base: an init, a kernel, a way in (ssh, sudo), a network
# (ifupdown's DHCP on eth0), rsync for Vagrant's synced folder and CA certificates.
INCLUDE=systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,openssh-server,sudo,rsync
INCLUDE+=,ifupdown,isc-dhcp-client,iproute2,ca-certificates,procps,less

die() { echo "build-box: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap's root mode)"
[ "$ARCH" = amd64 ] || die "builds amd64 boxes only (this machine is ${ARCH})"
VAGRANT_PUBLIC_KEY="$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1)"
[ -r "$VAGRANT_PUBLIC_KEY" ] || die "Vagrant's public key not found: install Debian's vagrant"

WORK="$(mktemp -d "${OUTPUT}.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="${WORK}/rootfs"
DISK="${WORK}/disk.raw"

configure_guest() {
    local root="$1" root_uuid="$2"
    echo ice-lab > "${root}/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 ice-lab\n' > "${root}/etc/hosts"
    printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" > "${root}/etc/fstab"
    printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' \
        > "${root}/etc/network/interfaces"
    chroot "$root" useradd --create-home --shell /bin/bash vagrant
    echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "${root}/etc/sudoers.d/vagrant"
    chmod 0440 "${root}/etc/sudoers.d/vagrant"
    install -d -m 0700 -o 1000 -g 1000 "${root}/home/vagrant/.ssh"
    install -m 0600 -o 1000 -g 1000 "$VAGRANT_PUBLIC_KEY" "${root}/home/vagrant/.ssh/authorized_keys"
    echo 'UseDNS no' > "${root}/etc/ssh/sshd_config.d/vagrant.conf"
    # The host keys openssh-server made at build time stay: this box lives for one check, and
    # making an RSA key at first boot takes long on an emulated CPU.
    # A machine id of its own per boot of a fresh copy (DHCP client ids derive from it).
    : > "${root}/etc/machine-id"
    copy_registry_config "$root"
    rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/archives/*.deb
}

make_root_filesystem() {
    local sources aptopts=() hooks=()
    mapfile -t sources < <(host_apt_sources)
    [ "${#sources[@]}" -gt 0 ] || die "this host has no apt sources to build from"
    [ -f /etc/apt/apt.conf.d/99artifact-registry ] &&
        aptopts+=(--aptopt=/etc/apt/apt.conf.d/99artifact-registry)
    # The hook runs with /proc, /sys and /dev mounted in the root file system and with
    # mmdebstrap's policy-rc.d, so no package's service starts on this host.
    # Its output goes to stderr: mmdebstrap's own stdout is silenced.
    if [ "$PROVISIONED" -eq 1 ]; then
        hooks+=(--customize-hook="bash '${HERE}/provision-box.sh' \"\$1\" '${HERE%/scripts/vm}' >&2")
    fi
    echo "build-box: Debian ${SUITE} with mmdebstrap"
    mmdebstrap --quiet --mode=root --variant=minbase --include="$INCLUDE" "${aptopts[@]}" \
        "${hooks[@]}" "$SUITE" "$ROOTFS" "${sources[@]}" >/dev/null
}

make_disk() {
    local root_uuid="$1" kernel initrd boot="${WORK}/boot.vfat"
    kernel="$(ls "${ROOTFS}"/boot/vmlinuz-* | sort -V | tail -n1)"
    initrd="$(ls "${ROOTFS}"/boot/initrd.img-* | sort -V | tail -n1)"
    truncate -s "${DISK_MIB}M" "$DISK"
    printf 'label: dos\nstart=1MiB, size=%sMiB, type=c, bootable\nstart=%sMiB, type=83\n' \
        "$BOOT_MIB" "$ROOT_OFFSET_MIB" | sfdisk --quiet "$DISK"
    dd if=/usr/lib/syslinux/mbr/mbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none
    # The boot partition: SYSLINUX, the kernel and its initramfs.
    mkfs.vfat -n BOOT -C "$boot" $((BOOT_MIB * 1024)) >/dev/null
    syslinux --install "$boot"
    cat > "${WORK}/syslinux.cfg" <<EOF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=${root_uuid} ro net.ifnames=0 console=tty0 console=ttyS0,115200
EOF
    mcopy -i "$boot" "$kernel" ::/vmlinuz
    mcopy -i "$boot" "$initrd" ::/initrd.img
    mcopy -i "$boot" "${WORK}/syslinux.cfg" ::/syslinux.cfg
    dd if="$boot" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none
    # The root partition, filled from the directory mmdebstrap made.
    mkfs.ext4 -q -L ice-lab-root -U "$root_uuid" -d "$ROOTFS" \
        -E offset=$((ROOT_OFFSET_MIB * 1024 * 1024)) "$DISK" "${ROOT_MIB}M"
}

make_image() {
    qemu-img convert -O qcow2 "$DISK" "${OUTPUT}.tmp"
    mv "${OUTPUT}.tmp" "$OUTPUT"
}

ROOT_UUID="$(cat /proc/sys/kernel/random/uuid)"
make_root_filesystem
configure_guest "$ROOTFS" "$ROOT_UUID"
echo "build-box: disk image (SYSLINUX + ext4, ${DISK_MIB} MiB virtual)"
make_disk "$ROOT_UUID"
make_image
echo "build-box: ${OUTPUT} ($(du -h "$OUTPUT" | cut -f1))"
