#!/usr/bin/env bash
# Makes the container base image `debian:bookworm` locally, for machines that reach no
# container registry: Debian 12 (minbase) made by mmdebstrap from this host's apt sources, with
# this host's package-registry configuration (scripts/vm/registry-config.sh), imported into
# podman. The Dockerfile's `FROM debian:bookworm` then finds it without pulling.
#
#   scripts/vm/base-image.sh [IMAGE]     (default debian:bookworm)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm/registry-config.sh
. "${HERE}/registry-config.sh"
IMAGE="${1:-debian:bookworm}"

[ "$(id -u)" -eq 0 ] || { echo "base-image: needs root (mmdebstrap's root mode)" >&2; exit 1; }
ROOTFS="$(mktemp -d /var/tmp/ice-lab-base-image.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT

mapfile -t sources < <(host_apt_sources)
aptopts=()
[ -f /etc/apt/apt.conf.d/99artifact-registry ] &&
    aptopts+=(--aptopt=/etc/apt/apt.conf.d/99artifact-registry)
mmdebstrap --quiet --mode=root --variant=minbase --include=ca-certificates "${aptopts[@]}" \
    bookworm "$ROOTFS" "${sources[@]}" >/dev/null
copy_registry_config "$ROOTFS"
rm -rf "${ROOTFS}"/var/lib/apt/lists/* "${ROOTFS}"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | podman import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base-image: ${IMAGE} ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
