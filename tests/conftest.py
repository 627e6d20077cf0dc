"""Shared fixtures. Tests marked `root` build real namespaces: they need root, nftables,
Mininet's mnexec and coturn, and are skipped (with a reason) without them. CI is root."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

# A suite started in the background by a non-interactive shell (`.ci/run &`, `nohup`) inherits
# SIGINT ignored, and so would every `lab run` it starts: Python then installs no Ctrl-C
# handler, and the tests that press Ctrl-C on a run would see it run on. A terminal's Ctrl-C
# reaches a foreground `lab run` with SIGINT at its default: give the children that.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _root_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("mnexec", "nft", "turnserver", "ifconfig"):
        if shutil.which(tool) is None:
            return f"needs {tool} (run `make setup`)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _root_ready()
    if reason is None:
        return
    if os.environ.get("CI"):
        # CI is root with everything installed: a skipped root test there is a broken set-up.
        raise pytest.UsageError(f"CI cannot run the root tests: {reason}")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
