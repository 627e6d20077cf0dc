#!/usr/bin/env bash
# The one set-up for bare machines, CI and the Vagrant VM: installs what is missing,
# idempotently, and says in one line what is wrong when it cannot.
#
#   scripts/setup.sh                       install what is missing (what `make setup` runs)
#   scripts/setup.sh --check-distribution  only say whether this system is supported
#
# ICE_LAB_OS_RELEASE names the os-release file to read instead of /etc/os-release, so the
# tests can put the distribution check to other systems without having one.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO}/.venv"
OS_RELEASE="${ICE_LAB_OS_RELEASE:-/etc/os-release}"
# `.` looks a bare name up in PATH first: keep a relative path relative.
case "$OS_RELEASE" in */*) ;; *) OS_RELEASE="./${OS_RELEASE}" ;; esac
DISTRO_ID=""
DISTRO_NAME=""
DISTRO_SUPPORTED=0
# amd64, or arm64 (an Apple-silicon host's VM) where Debian packages what the lab uses.
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"

die() { echo "setup: $*" >&2; exit 2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "needs root for '$*': run as root or install sudo"; fi
}

check_distribution() {
    [ -r "$OS_RELEASE" ] || die "cannot read ${OS_RELEASE}: only Debian 12 and Ubuntu 24.04 are supported"
    local fields id version
    # os-release is shell syntax by specification; it is read in a subshell so that none of
    # its variables can land in this script's.
    # shellcheck disable=SC1090
    fields="$(. "$OS_RELEASE" 2>/dev/null && printf '%s|%s|%s' "${ID:-}" "${VERSION_ID:-}" "${PRETTY_NAME:-${NAME:-}}")" ||
        die "cannot parse ${OS_RELEASE}: only Debian 12 and Ubuntu 24.04 are supported"
    IFS='|' read -r id version DISTRO_NAME <<<"$fields"
    DISTRO_ID="$id"
    case "${id}:${version}" in
        debian:12|ubuntu:24.04) DISTRO_SUPPORTED=1 ;;
        debian:*|ubuntu:*) echo "setup: ${DISTRO_NAME:-${id} ${version}} is untested; Debian 12 and Ubuntu 24.04 are supported" >&2 ;;
        *) die "${DISTRO_NAME:-this system} is not supported: the lab needs Debian 12 or Ubuntu 24.04" ;;
    esac
}

# The same names on Debian 12 and Ubuntu 24.04. On Ubuntu, mininet and coturn come from the
# universe component, which Ubuntu's server, cloud and Vagrant images enable.
# libnss3-tools gives certutil, which trusts a run's CA in a browser peer's per-run NSS
# database (TURN over TLS, wss signaling); the browser itself is added per distribution.
# squid and dante-server are the HTTPS (CONNECT) and SOCKS5 proxies of `lab matrix`'s proxy
# rows, started per run on a proxy-only edge (lab/servers/proxy.py). dnsmasq-base is
# dnsmasq without the distribution's service (so there is none to disable): each run starts
# its own DNS servers inside its namespaces (lab/servers/dns.py).
# tshark: `lab run --capture` captures with dumpcap and decodes STUN/TURN/DTLS with it
# (noninteractive: Debian's question about non-root capture keeps its default, no).
# wireguard-go and wireguard-tools (`wg`): a topology's VPN tunnels are real WireGuard, in
# userspace on a TUN device, since the lab's kernels need not have the wireguard module
# (lab/network/vpn.py).
SYSTEM_PACKAGES=(mininet coturn dnsmasq-base nftables iproute2 tcpdump tshark net-tools conntrack iputils-ping openssl ca-certificates make libnss3-tools squid dante-server wireguard-go wireguard-tools)
# tayga: NAT64 (a userspace translator on a TUN device) for IPv6-only hosts, started per run
# in a carrier gateway's namespace (lab/network/ipv6.py). Debian and Ubuntu ship its service
# disabled (K links only), so installing it starts nothing on the machine itself.
SYSTEM_PACKAGES+=(tayga)
# CI also checks the Vagrantfile's syntax with `ruby -c` (tests/unit/test_vagrant.py). Ruby
# takes about 25 MB installed, which a lab machine or the VM has no use for.
if [ -n "${CI:-}" ]; then SYSTEM_PACKAGES+=(ruby); fi

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

apt_get() {
    # DPkg::Lock::Timeout: on a VM's first boot unattended-upgrades can hold the dpkg lock for
    # minutes; wait for it rather than fail `vagrant up`. NEEDRESTART_SUSPEND: Ubuntu's
    # needrestart would otherwise restart services (sshd among them) mid-provisioning.
    as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get -o DPkg::Lock::Timeout=300 "$@"
}

apt_update() {
    # `apt-get update` takes the package-lists lock, which DPkg::Lock::Timeout does not cover:
    # retry while a boot-time apt-daily holds it, and fail at once on anything else.
    local try output
    for try in $(seq 1 30); do
        if output="$(apt_get update -qq 2>&1)"; then return 0; fi
        case "$output" in
            *"Could not get lock"*) [ "$try" -eq 1 ] && echo "setup: waiting for another apt to finish"; sleep 5 ;;
            *) printf '%s\n' "$output" >&2; die "apt-get update failed (see above)" ;;
        esac
    done
    die "apt-get update: the package lists stayed locked for 150 s"
}

add_browser_package() {
    # The Chromium peer (`--viewer chromium`) runs the distribution's Chromium. Debian
    # packages it; Ubuntu 24.04's `chromium` is only a wrapper that installs a snap, which
    # is confined and has not been checked to run inside the lab's namespaces, so there
    # the Chromium agent is left out (aiortc peers work as before).
    # chromium-headless-shell is the same build without the browser's interface: the
    # peer's default, as it starts in a quarter of the time (lab/peers/chromium_browser.py).
    if [ "$DISTRO_ID" = debian ]; then
        # firefox-esr: the Firefox peer (`--viewer firefox`, lab/peers/firefox_browser.py).
        SYSTEM_PACKAGES+=(chromium chromium-headless-shell firefox-esr)
    elif ! command -v chromium >/dev/null 2>&1; then
        echo "setup: note: no Chromium package outside the snap on ${DISTRO_NAME:-this system}:" \
            "the chromium agent (--viewer/--master chromium) is not available here" >&2
    fi
}

add_node_packages() {
    # The kvs-js agent (`--viewer kvs-js`) runs the KVS JavaScript SDK in the Chromium peer;
    # npm installs that SDK (install_kvs_js_page). Node.js and npm come from the
    # distribution, and only where the browser does; an npm already there is used as it is.
    command -v npm >/dev/null 2>&1 && return 0
    if [ "$DISTRO_ID" = debian ] || command -v chromium >/dev/null 2>&1; then
        SYSTEM_PACKAGES+=(nodejs npm)
    fi
}

install_kvs_js_page() {
    # The kvs-js agent's page loads the SDK's browser bundle and the AWS SDK v3 Kinesis Video
    # clients from lab/peers/page/node_modules (git-ignored), at the versions its
    # package-lock.json pins: `npm ci` without optional dependencies (the SDK's Node-only
    # crypto shim would pull in React Native), then `npm run build` bundles the AWS clients
    # with esbuild-wasm as the SDK's examples bundle them. Done again only when the
    # package files change.
    local page="${REPO}/lab/peers/page" stamp want
    if ! command -v npm >/dev/null 2>&1; then
        echo "setup: note: no npm on ${DISTRO_NAME:-this system}: the kvs-js agent is not available" >&2
        return 0
    fi
    stamp="${page}/node_modules/.ice-lab/installed"
    want="$(cat "${page}/package.json" "${page}/package-lock.json" "${page}/kvs_js.aws-sdk.mjs" | sha256sum | cut -d' ' -f1)"
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    echo "setup: installing the KVS JavaScript SDK for the kvs-js agent (npm ci in lab/peers/page)"
    (cd "$page" && npm ci --omit=optional --no-audit --no-fund --loglevel=error >/dev/null &&
        npm run --silent build) ||
        die "npm could not install the kvs-js agent's packages in ${page} (see above)"
    echo "$want" > "$stamp"
}

drop_unavailable_packages() {
    # Every name is packaged for amd64; on other architectures (arm64: a VM on an Apple-silicon
    # host) a package the archive lacks is left out with a note rather than failing the
    # whole set-up, and the lab works without what it gave. On amd64 nothing is dropped: a
    # missing name there is a real error that apt-get reports.
    [ "$ARCH" = amd64 ] && return 0
    local available=() pkg
    for pkg in "${missing[@]}"; do
        if apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
            available+=("$pkg")
        else
            echo "setup: note: no ${pkg} package for ${ARCH} on ${DISTRO_NAME:-this system}: left out" >&2
        fi
    done
    missing=("${available[@]}")
}

install_system_packages() {
    local missing=() hint="" pkg status
    # One dpkg-query for every package keeps a run that installs nothing fast; unknown names
    # print nothing and so count as missing.
    declare -A installed=()
    while read -r pkg status; do
        [ "$status" = "install ok installed" ] && installed["$pkg"]=1
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "${SYSTEM_PACKAGES[@]}" 2>/dev/null || true)
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        [ -n "${installed[$pkg]:-}" ] || missing+=("$pkg")
    done
    # Probing interpreters costs a few hundred ms; a working venv needs none.
    if [ ! -x "${VENV}/bin/python" ] && ! python_for_venv >/dev/null; then
        missing+=(python3-venv python3-pip)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
            die "needs root to install ${missing[*]}: run as root or install sudo"
        fi
        apt_update
        drop_unavailable_packages
        [ "${#missing[@]}" -gt 0 ] || return 0
        echo "setup: installing ${missing[*]}"
        if [ "$DISTRO_ID" = ubuntu ]; then
            hint=" (on Ubuntu, mininet and coturn are in universe: sudo add-apt-repository universe)"
        fi
        # --no-install-recommends: mininet recommends Open vSwitch, which the lab never uses.
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
            die "apt-get could not install ${missing[*]}${hint}"
    fi
    # The distribution's coturn, squid and danted services are not ours: the lab starts its
    # own per run, inside its namespaces, with configuration of its own.
    local service
    for service in coturn squid danted; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled "$service" >/dev/null 2>&1; then
            as_root systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi
    done
}

netem_ready() {
    # Loaded, built into the kernel, or loadable now.
    [ -d /sys/module/sch_netem ] && return 0
    grep -qs '/sch_netem\.ko' "/lib/modules/$(uname -r)/modules.builtin" && return 0
    command -v modprobe >/dev/null 2>&1 && modprobe -q sch_netem 2>/dev/null
}

load_netem() {
    # Link delay and jitter use tc netem qdiscs where the kernel has sch_netem, else the
    # lab's userspace delay line (loss and rate limits use nftables and TBF, which every
    # supported kernel has).
    # Loading a module needs root; the lab runs as root, so a set-up without root (e.g.
    # `make unit`) leaves this to the next one with root rather than ask for a password.
    [ "$(id -u)" -eq 0 ] || return 0
    netem_ready && return 0
    local kernel extra
    kernel="$(uname -r)"
    extra="linux-modules-extra-${kernel}"
    # Ubuntu ships sch_netem in linux-modules-extra-<kernel> for some kernel flavours, and
    # minimal and cloud installs may lack that package; some newer kernels have no such
    # package at all, so it is installed only when the archive has it. Debian's kernel
    # packages carry sch_netem themselves.
    if [ "$DISTRO_ID" = ubuntu ] && [ -d "/lib/modules/${kernel}" ] &&
        [ "$(dpkg-query -W -f='${Status}' "$extra" 2>/dev/null || true)" != "install ok installed" ] &&
        apt-cache show "$extra" >/dev/null 2>&1; then
        echo "setup: installing ${extra} for sch_netem (link delay and jitter)"
        apt_get install -y -qq --no-install-recommends "$extra" >/dev/null ||
            echo "setup: could not install ${extra}" >&2
        netem_ready && return 0
    fi
    echo "setup: note: kernel ${kernel} has no sch_netem: the lab's userspace delay line carries" \
        "link delay and jitter instead (docs/explanation/delay-line.md)" >&2
}

install_ci_vagrant() {
    # CI runs `vagrant validate` when the distribution packages Vagrant (Debian 12 does,
    # 9 s to install); where it does not, CI checks the Vagrantfile with `ruby -c` only.
    [ -n "${CI:-}" ] || return 0
    command -v vagrant >/dev/null 2>&1 && return 0
    apt_get install -y -qq --no-install-recommends vagrant >/dev/null 2>&1 ||
        echo "setup: no vagrant package here; CI checks the Vagrantfile with ruby -c only" >&2
}

install_virtualenv() {
    local python stamp want
    if [ ! -x "${VENV}/bin/python" ]; then
        python="$(python_for_venv)" || die "no Python >= 3.11 with venv support found"
        "$python" -m venv "$VENV"
    fi
    stamp="${VENV}/.ice-lab-installed"
    want="$(sha256sum < "${REPO}/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "setup: installing the lab into ${VENV}"
        "${VENV}/bin/pip" install -q --disable-pip-version-check -e "${REPO}[dev,docs]"
        echo "$want" > "$stamp"
    fi
    # Byte-compile the lab: where PYTHONDONTWRITEBYTECODE is set (CI images often do),
    # Python would otherwise recompile every module on each `lab` start. Quick and
    # idempotent: only changed files are compiled. The lab's Python files alone: compileall
    # walking lab/ would also list the kvs-js agent's node_modules (5,000 files, no Python),
    # which took 30 s of every set-up in a VM on an emulated CPU.
    find "${REPO}/lab" -name node_modules -prune -o -name '*.py' -print |
        "${VENV}/bin/python" -m compileall -q -i - >/dev/null
}

case "${1:-}" in
    "") ;;
    --check-distribution)
        check_distribution
        [ "$DISTRO_SUPPORTED" -eq 1 ] && echo "setup: ${DISTRO_NAME} is supported"
        exit 0 ;;
    *) die "unknown argument '$1' (usage: scripts/setup.sh [--check-distribution])" ;;
esac

check_distribution
add_browser_package
add_node_packages
install_system_packages
install_ci_vagrant
load_netem
install_virtualenv
install_kvs_js_page
