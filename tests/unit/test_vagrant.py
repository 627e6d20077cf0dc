"""The VM, CI and a bare machine have one set-up: what can be checked without a hypervisor.

The Vagrantfile must be valid, must provision with scripts/setup.sh and nothing else, and the
Makefile's `run` and `test` must reach the same script through `setup`. The distribution
check of scripts/setup.sh is run against fake os-release files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = REPO / "Vagrantfile"
SETUP = REPO / "scripts" / "setup.sh"
MAKEFILE = REPO / "Makefile"

# What a provisioner may run: the shared set-up, by itself.
SHARED_SETUP = re.compile(r"(bash\s+|sudo\s+)?/vagrant/scripts/setup\.sh|cd /vagrant && make setup")

# What `make setup` may run: the script, directly or through bash.
SETUP_COMMAND = re.compile(r"(bash\s+)?(\./)?scripts/setup\.sh")

# Loads the Vagrantfile with a stand-in for Vagrant that records what it configures, and
# prints that as JSON: the real Vagrantfile, evaluated, without Vagrant or a hypervisor.
RECORDING_VAGRANT = r"""
require "json"

RECORD = {"box" => nil, "synced_folders" => [], "providers" => {}, "provisioners" => []}

class Settings
  def initialize
    @values = {}
  end

  def method_missing(name, *args, **opts, &block)
    key = name.to_s
    if key.end_with?("=") && args.length == 1
      @values[key.chomp("=")] = args.first
    elsif args.empty? && opts.empty? && block.nil?
      @values[key] ||= Settings.new
    else
      raise NoMethodError, "the Vagrantfile calls #{key} with arguments this test does not know"
    end
  end

  def respond_to_missing?(*)
    true
  end

  def to_h
    @values.transform_values { |v| v.is_a?(Settings) ? v.to_h : v }
  end
end

class VMSettings < Settings
  def box=(name)
    RECORD["box"] = name
  end

  def synced_folder(host, guest, **opts)
    RECORD["synced_folders"] << opts.transform_keys(&:to_s).merge("host" => host, "guest" => guest)
  end

  def provider(name)
    settings = Settings.new
    yield settings, nil
    RECORD["providers"][name.to_s] = settings.to_h
  end

  def provision(name, **opts)
    RECORD["provisioners"] << opts.transform_keys(&:to_s).merge("name" => name.to_s)
  end
end

class ConfigSettings < Settings
  def vm
    @vm ||= VMSettings.new
  end
end

module Vagrant
  def self.configure(version)
    raise "Vagrant.configure(#{version.inspect}): expected \"2\"" unless version.to_s == "2"
    yield ConfigSettings.new
  end
end

load ARGV.fetch(0)
puts JSON.generate(RECORD)
"""


def _ruby() -> str:
    ruby = shutil.which("ruby")
    if ruby is None:
        if os.environ.get("CI"):
            # scripts/setup.sh installs ruby when CI is set: a skip here is a broken set-up.
            pytest.fail("CI has no ruby although scripts/setup.sh installs it when CI is set")
        pytest.skip("needs ruby to check the Vagrantfile (CI installs it; `apt-get install ruby`)")
    return ruby


def _code_lines(path: Path) -> list[str]:
    """The file's lines without whole-line comments (Ruby, shell and make all use #)."""
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def vagrant_config(tmp_path_factory: pytest.TempPathFactory) -> dict:
    recorder = tmp_path_factory.mktemp("vagrant") / "record.rb"
    recorder.write_text(RECORDING_VAGRANT)
    env = {k: v for k, v in os.environ.items() if k != "ICE_LAB_BOX"}
    result = subprocess.run(
        [_ruby(), str(recorder), str(VAGRANTFILE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_vagrantfile_is_valid_ruby() -> None:
    result = subprocess.run(
        [_ruby(), "-c", str(VAGRANTFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stdout


def test_vagrant_validates_the_vagrantfile(tmp_path: Path) -> None:
    vagrant = shutil.which("vagrant")
    if vagrant is None:
        pytest.skip("no vagrant binary here; `vagrant validate` runs where Vagrant is installed")
    env = {k: v for k, v in os.environ.items() if k != "ICE_LAB_BOX"}
    env.update(
        # Keep the user's ~/.vagrant.d and the repository's .vagrant/ out of it.
        VAGRANT_HOME=str(tmp_path / "vagrant.d"),
        VAGRANT_DOTFILE_PATH=str(tmp_path / "dot-vagrant"),
        VAGRANT_CHECKPOINT_DISABLE="1",
    )
    # --ignore-provider: without it validate wants a usable hypervisor, which CI has not.
    result = subprocess.run(
        [vagrant, "validate", "--ignore-provider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


def test_vagrantfile_has_no_setup_steps_of_its_own() -> None:
    code = "\n".join(_code_lines(VAGRANTFILE))
    for step in ("apt-get", "apt ", "dpkg", "pip ", "pip3", "modprobe", "python3 -m venv"):
        assert step not in code, f"the Vagrantfile runs {step!r}: that belongs in scripts/setup.sh"


def test_vagrant_provisioning_is_the_shared_setup(vagrant_config: dict) -> None:
    provisioners = vagrant_config["provisioners"]
    assert provisioners, "the Vagrantfile provisions nothing"
    for provisioner in provisioners:
        kind = provisioner.get("type", provisioner["name"])
        assert kind == "shell", provisioner
        # Vagrant runs shell provisioners as root unless privileged is false.
        assert provisioner.get("privileged", True) is True, provisioner
        command = provisioner.get("inline") or provisioner.get("path")
        assert command is not None, provisioner
        assert SHARED_SETUP.fullmatch(command.strip()), (
            f"provisioner runs {command!r}, not the shared set-up alone"
        )


def test_vagrant_box_is_debian_12(vagrant_config: dict) -> None:
    """Debian packages Chromium (Ubuntu's is a snap): the browser agents need Debian."""
    assert vagrant_config["box"] == "bento/debian-12"


def test_ice_lab_box_overrides_the_box(tmp_path: Path) -> None:
    recorder = tmp_path / "record.rb"
    recorder.write_text(RECORDING_VAGRANT)
    result = subprocess.run(
        [_ruby(), str(recorder), str(VAGRANTFILE)],
        capture_output=True,
        text=True,
        env={**os.environ, "ICE_LAB_BOX": "ice-lab/debian-12-local"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["box"] == "ice-lab/debian-12-local"


def test_vagrant_machine_size_for_virtualbox_and_libvirt(vagrant_config: dict) -> None:
    for provider in ("virtualbox", "libvirt"):
        settings = vagrant_config["providers"].get(provider)
        assert settings is not None, f"no {provider} settings"
        assert settings.get("memory") == 4096, (provider, settings)
        assert settings.get("cpus") == 2, (provider, settings)


def test_vm_never_shares_the_host_venv(vagrant_config: dict) -> None:
    """A shared .venv breaks the host's or the VM's: /vagrant is an rsync copy without it."""
    folders = {f["guest"]: f for f in vagrant_config["synced_folders"]}
    repo = folders.get("/vagrant")
    assert repo is not None and repo["host"] == ".", folders
    assert repo.get("type") == "rsync", repo
    excluded = {pattern.strip("/") for pattern in repo.get("rsync__exclude", [])}
    assert ".venv" in excluded, repo


def test_vm_copy_leaves_out_machine_files_and_the_box_cache(vagrant_config: dict) -> None:
    """The kvs-js agent's npm packages are set up per machine; .cache/ holds vm-check's box."""
    folders = {f["guest"]: f for f in vagrant_config["synced_folders"]}
    excluded = {pattern.strip("/") for pattern in folders["/vagrant"].get("rsync__exclude", [])}
    assert {"lab/peers/page/node_modules", ".cache"} <= excluded, excluded


def _make_dry_run(target: str) -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("needs make (scripts/setup.sh installs it)")
    result = subprocess.run(
        [make, "-n", "--no-print-directory", "-C", str(REPO), target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(("target", "then"), [("run", "lab run"), ("test", "pytest")])
def test_make_targets_run_the_shared_setup_first(target: str, then: str) -> None:
    commands = _make_dry_run(target)
    assert SETUP_COMMAND.fullmatch(commands[0]), commands
    assert any(then in command for command in commands[1:]), commands


def test_make_setup_is_the_setup_script() -> None:
    commands = _make_dry_run("setup")
    assert len(commands) == 1 and SETUP_COMMAND.fullmatch(commands[0]), commands


def test_make_run_and_test_depend_on_setup() -> None:
    rules = {}
    for line in _code_lines(MAKEFILE):
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)(.*)$", line)
        if match:
            rules[match.group(1)] = match.group(2).split()
    assert "setup" in rules.get("run", []), rules.get("run")
    assert "setup" in rules.get("test", []), rules.get("test")


def test_setup_script_syntax() -> None:
    result = subprocess.run(["bash", "-n", str(SETUP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


OS_RELEASES = {
    "debian-12": (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    ),
    "ubuntu-24.04": (
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
        'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
        "ID_LIKE=debian\n"
    ),
    "fedora-40": (
        'NAME="Fedora Linux"\nVERSION="40 (Workstation Edition)"\nID=fedora\nVERSION_ID=40\n'
        'PRETTY_NAME="Fedora Linux 40 (Workstation Edition)"\n'
    ),
    "debian-13": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n',
}


def _check_distribution(tmp_path: Path, os_release: str | None) -> subprocess.CompletedProcess:
    path = tmp_path / "os-release"
    if os_release is not None:
        path.write_text(os_release)
    env = {**os.environ, "ICE_LAB_OS_RELEASE": str(path)}
    return subprocess.run(
        ["bash", str(SETUP), "--check-distribution"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("system", "name"),
    [("debian-12", "Debian GNU/Linux 12 (bookworm)"), ("ubuntu-24.04", "Ubuntu 24.04.1 LTS")],
)
def test_supported_distributions_pass(tmp_path: Path, system: str, name: str) -> None:
    result = _check_distribution(tmp_path, OS_RELEASES[system])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"setup: {name} is supported\n"
    assert result.stderr == ""


def test_other_distribution_fails_with_one_message(tmp_path: Path) -> None:
    result = _check_distribution(tmp_path, OS_RELEASES["fedora-40"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "setup: Fedora Linux 40 (Workstation Edition) is not supported: "
        "the lab needs Debian 12 or Ubuntu 24.04\n"
    )


def test_other_release_of_a_supported_distribution_is_only_warned(tmp_path: Path) -> None:
    result = _check_distribution(tmp_path, OS_RELEASES["debian-13"])
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "untested" in result.stderr


def test_unreadable_os_release_fails_with_one_message(tmp_path: Path) -> None:
    result = _check_distribution(tmp_path, None)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot read" in result.stderr
