#!/usr/bin/env bash
# The container, built and run for real with Debian's podman (docs/how-to/container.md has what
# it measured): the base image debian:bookworm made here (scripts/vm/base-image.sh) when
# podman has none, the repository's Dockerfile built, then `lab run home-nat-both` in the
# image, privileged, with an aiortc and with a Chromium viewer; both result documents
# checked. Each step prints its time; the first failure ends it non-zero.
#
#   sudo bash scripts/vm/container-check.sh
#
# Two settings of this project's machines, both said where used: no service manager (so no
# systemd cgroup manager: cgroupfs), and a kernel that refuses a container's init the
# setrlimit() calls runc and crun make (so runc through scripts/vm/runc-without-rlimits).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RESULTS="${REPO}/.cache/container-check"
PODMAN=(podman --cgroup-manager cgroupfs)
RUNTIME=()

say() { echo "container-check: $*"; }

timed() {
    local title="$1" start=$SECONDS
    shift
    say "--- ${title}"
    "$@"
    say "--- ${title}: ok in $((SECONDS - start)) s"
}

install_packages() {
    local pkg missing=()
    for pkg in podman runc mmdebstrap; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

choose_runtime() {
    # Plain runc where the kernel lets a container's init set its limits, else the wrapper.
    if "${PODMAN[@]}" run --rm --runtime runc --network none --entrypoint true debian:bookworm 2>/dev/null; then
        RUNTIME=(--runtime runc)
    else
        RUNTIME=(--runtime "${REPO}/scripts/vm/runc-without-rlimits")
        say "runc cannot set a container's limits here: using scripts/vm/runc-without-rlimits"
    fi
}

base_image() {
    "${PODMAN[@]}" image exists debian:bookworm && { say "debian:bookworm is there"; return 0; }
    bash "${REPO}/scripts/vm/base-image.sh" debian:bookworm
}

run_scenario() {
    # run_scenario NAME AGENT: home-nat-both with AGENT as the viewer, privileged, its result
    # written to the mounted folder and checked.
    "${PODMAN[@]}" run "${RUNTIME[@]}" --rm --privileged --network none \
        -v "${RESULTS}:/ice-lab/results" ice-lab:latest \
        run home-nat-both --viewer "$2" --json "results/$1.json" --quiet
    python3 "${REPO}/scripts/vm/check_result.py" "${RESULTS}/$1.json" "$2"
}

[ "$(id -u)" -eq 0 ] || { say "needs root"; exit 1; }
mkdir -p "$RESULTS"
rm -f "${RESULTS}"/*.json
timed "packages (podman, runc, mmdebstrap)" install_packages
timed "base image debian:bookworm" base_image
choose_runtime
# --isolation chroot: the build's RUN steps need no OCI runtime (see above).
timed "podman build -t ice-lab:latest ." "${PODMAN[@]}" build --isolation chroot --network host \
    -t ice-lab:latest "$REPO"
say "image: $("${PODMAN[@]}" image inspect --format '{{.Size}}' ice-lab:latest) bytes"
timed "lab run home-nat-both (aiortc viewer) in the container" run_scenario home-nat-both aiortc
timed "lab run home-nat-both (chromium viewer) in the container" run_scenario home-nat-both-chromium chromium
say "passed"
