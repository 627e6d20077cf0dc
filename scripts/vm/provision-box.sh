#!/usr/bin/env bash
# Runs scripts/setup.sh inside the root file system of the box that scripts/vm/build-box.sh
# builds (an mmdebstrap customize hook: /proc, /sys and /dev are mounted there, and
# mmdebstrap's policy-rc.d keeps every service from starting), at the host's native speed.
# The repository is copied to /vagrant as Vagrant's rsync would copy it, so the set-up's
# virtualenv (/vagrant/.venv), its byte-compiled lab and the kvs-js agent's npm packages
# (/vagrant/lab/peers/page/node_modules) are where the VM's set-up looks for them; the
# Vagrantfile's rsync leaves these out, so the copy at `vagrant up` keeps them.
#
# In the VM, `vagrant up` runs scripts/setup.sh again: it finds every package installed and
# its stamps current (the box is rebuilt when the set-up's inputs change), so it installs
# nothing, and under QEMU's CPU emulation it takes seconds instead of twenty minutes.
#
#   scripts/vm/provision-box.sh ROOTFS REPO
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/vm/registry-config.sh
. "${HERE}/registry-config.sh"
ROOT="${1:?usage: scripts/vm/provision-box.sh ROOTFS REPO}"
REPO="${2:?usage: scripts/vm/provision-box.sh ROOTFS REPO}"

# The set-up reaches the registries as it does in the VM.
copy_registry_config "$ROOT"
# The Vagrantfile's rsync__exclude, as rsync patterns.
rsync -a --delete \
    --exclude=/.venv --exclude=/.git --exclude=/results --exclude='/*.egg-info' \
    --exclude=/.pytest_cache --exclude=/.ruff_cache --exclude=__pycache__ \
    --exclude=/lab/peers/page/node_modules --exclude=/.cache --exclude=/site \
    "${REPO}/" "${ROOT}/vagrant/"
echo "build-box: scripts/setup.sh in the box's root file system"
# The environment a `vagrant ssh` login has (/etc/environment), nothing of this host's
# (CI=true here would add CI's own packages).
chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c 'set -a; . /etc/environment; set +a; exec bash /vagrant/scripts/setup.sh'
# Download caches: the box carries what was installed, not the downloads.
rm -rf "${ROOT}/root/.cache" "${ROOT}/root/.npm" "${ROOT}"/var/lib/apt/lists/* \
    "${ROOT}"/var/cache/apt/archives/*.deb
