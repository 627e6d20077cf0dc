# shellcheck shell=bash
# Sourced by scripts/vm/build-box.sh and scripts/vm/base-image.sh: carries this host's way to the
# package registries into a Debian root file system (the VM's, the container base image's), so
# that scripts/setup.sh there installs packages as it does here, through the same sources and
# with the same CA certificates and client settings. Only files that exist here are copied;
# nothing else about this host is.

# The apt sources this host uses: enabled ones only (a file renamed *.disabled* is off).
host_apt_sources() {
    local file
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -s "$file" ] && echo "$file"
    done
    return 0
}

# Every file whose content decides how the registries are reached (for cache keys).
registry_config_files() {
    host_apt_sources
    local file
    for file in /etc/apt/apt.conf.d/99artifact-registry /etc/pip.conf /etc/xdg/pip/pip.conf \
        /etc/xdg/pip/constraints.txt /usr/local/share/ca-certificates/*.crt; do
        [ -f "$file" ] && echo "$file"
    done
    return 0
}

# copy_registry_config ROOT: apt sources with their keyrings and options, the extra CA
# certificates (the registries' TLS is checked against them), pip's and npm's settings.
copy_registry_config() {
    local root="$1" file keyring line
    rm -f "${root}/etc/apt/sources.list" "${root}"/etc/apt/sources.list.d/*
    while read -r file; do
        install -D -m 0644 "$file" "${root}${file}"
        while read -r keyring; do
            [ -f "$keyring" ] && [ ! -e "${root}${keyring}" ] &&
                install -D -m 0644 "$keyring" "${root}${keyring}"
        done < <(sed -n 's/.*[Ss]igned-[Bb]y[:=] *\([^] ]*\).*/\1/p' "$file")
    done < <(host_apt_sources)
    while read -r file; do
        case "$file" in /etc/apt/sources.list*) continue ;; esac
        install -D -m 0644 "$file" "${root}${file}"
    done < <(registry_config_files)
    chroot "$root" update-ca-certificates >/dev/null 2>&1
    # pip and npm read the system CA bundle only where told to (PIP_CERT here, cafile in npmrc).
    # PIP_FIND_LINKS (a wheel directory of this host's) is left out: the guest has none.
    # Idempotent: a provisioned box (scripts/vm/provision-box.sh) has it copied twice.
    for line in PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
        PIP_DISABLE_PIP_VERSION_CHECK=1; do
        grep -qxF "$line" "${root}/etc/environment" 2>/dev/null || echo "$line" >> "${root}/etc/environment"
    done
    printf '%s\n' cafile=/etc/ssl/certs/ca-certificates.crt fund=false audit=false \
        update-notifier=false > "${root}/etc/npmrc"
    install -D -m 0644 "${root}/etc/npmrc" "${root}/root/.npmrc"
    # /etc/environment is read at login (ssh); sudo keeps these for `sudo make run`.
    if [ -d "${root}/etc/sudoers.d" ]; then
        echo 'Defaults env_keep += "PIP_CERT PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK"' \
            > "${root}/etc/sudoers.d/ice-lab-pip"
        chmod 0440 "${root}/etc/sudoers.d/ice-lab-pip"
    fi
}
