#!/usr/bin/env bash
# The one set-up for bare machines, CI and the Vagrant VM: installs what is missing,
# idempotently, and says in one line what is wrong when it cannot.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO}/.venv"

die() { echo "setup: $*" >&2; exit 2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "needs root for '$*': run as root or install sudo"; fi
}

check_distribution() {
    [ -r /etc/os-release ] || die "cannot read /etc/os-release: only Debian 12 and Ubuntu 24.04 are supported"
    # shellcheck disable=SC1091
    . /etc/os-release
    case "${ID}:${VERSION_ID:-}" in
        debian:12|ubuntu:24.04) ;;
        debian:*|ubuntu:*) echo "setup: ${PRETTY_NAME} is untested; Debian 12 and Ubuntu 24.04 are supported" >&2 ;;
        *) die "${PRETTY_NAME:-this system} is not supported: the lab needs Debian 12 or Ubuntu 24.04" ;;
    esac
}

# Debian package names; the same on Debian 12 and Ubuntu 24.04 except where noted.
SYSTEM_PACKAGES=(mininet coturn nftables iproute2 tcpdump net-tools conntrack openssl ca-certificates make)

python_for_venv() {
    # Prefer an interpreter >= 3.11 that can make a virtualenv.
    for candidate in python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

install_system_packages() {
    local missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ! python_for_venv >/dev/null; then
        missing+=(python3-venv python3-pip)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # --no-install-recommends: mininet recommends Open vSwitch, which the lab never uses.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # The distribution's coturn service is not ours: the lab starts its own per run.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled coturn >/dev/null 2>&1; then
        as_root systemctl disable --now coturn >/dev/null 2>&1 || true
    fi
}

install_virtualenv() {
    local python stamp want
    python="$(python_for_venv)" || die "no Python >= 3.11 with venv support found"
    [ -x "${VENV}/bin/python" ] || "$python" -m venv "$VENV"
    stamp="${VENV}/.ice-lab-installed"
    want="$(cat "${REPO}/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "setup: installing the lab into ${VENV}"
        "${VENV}/bin/pip" install -q --disable-pip-version-check -e "${REPO}[dev]"
        echo "$want" > "$stamp"
    fi
}

check_distribution
install_system_packages
install_virtualenv
