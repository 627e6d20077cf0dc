"""Checks before a run builds anything: privilege and the tools it will call.

Each failure is one line naming the tool and how to get it (exit status 2).
"""

from __future__ import annotations

import os
import shutil

from lab.errors import LabInputError

TOOLS = {
    "mnexec": "Debian package 'mininet' (run `make setup`)",
    "ifconfig": "Debian package 'net-tools' (Mininet checks for it)",
    "nft": "Debian package 'nftables'",
    "ip": "Debian package 'iproute2'",
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
