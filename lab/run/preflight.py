"""Checks before a run builds anything: privilege and the tools it will call.

Each failure is one line naming the tool and how to get it (exit status 2).
"""

from __future__ import annotations

import os
import platform
import shutil
from typing import TYPE_CHECKING

from lab.core.errors import LabInputError
from lab.network import impairments

if TYPE_CHECKING:
    from lab.scenario.scenario import Scenario

TOOLS = {
    "mnexec": "Debian package 'mininet' (run `make setup`)",
    "ifconfig": "Debian package 'net-tools' (Mininet checks for it)",
    "nft": "Debian package 'nftables'",
    "ip": "Debian package 'iproute2'",
    "dnsmasq": "Debian package 'dnsmasq-base' (run `make setup`)",
    "unshare": "Debian package 'util-linux'",
}
COTURN = {"turnserver": "Debian package 'coturn'"}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabInputError(
            "the lab builds network namespaces and nftables rules: run it as root (sudo)"
        )


def require_tools(need_coturn: bool) -> None:
    wanted = TOOLS | (COTURN if need_coturn else {})
    for tool, source in wanted.items():
        if shutil.which(tool) is None:
            raise LabInputError(f"missing tool '{tool}': install {source}")


def netem_missing_message(where: str) -> str:
    """The one line a run prints when an impairment asks for netem and the kernel lacks it."""
    return (
        f"{where}: netem needs the kernel module sch_netem, which this kernel "
        f"({platform.release()}) does not have. Leave `mechanism` out (or set it to "
        f"delay-line, and unset {impairments.MECHANISM_ENV}): the lab's delay line carries "
        "delay, jitter, reordering, duplication and burst loss on any kernel. Or run this "
        "scenario in the Vagrant VM, whose kernel has netem (docs/how-to/vm.md)"
    )


def require_impairment_support(scenario: Scenario) -> None:
    """Stop before building anything if an impairment asks for netem the kernel lacks.

    `auto` never does: it takes the delay line where netem is missing."""
    needing = [
        f"conditions.{node}.{where}"
        for node, c in scenario.conditions.items()
        for where, entry in c.impairment_fields()
        if entry.carrier == "netem"
    ]
    if not needing or impairments.netem_available():
        return
    raise LabInputError(netem_missing_message(f"{scenario.source}: {needing[0]}.mechanism"))
