"""How long does a run whose pairs all fail take, per timing profile?

`--timing fast` should end in a few seconds; `--timing kvs` should take the KVS C SDK's
connectivity check timeout (10 s), as a customer's device would. Prints both, measured
in this run, with the check timeout each profile declares.

Usage: sudo .venv/bin/python benchmarks/failure_timing.py [SCENARIO [RUN ARGS...]]
(default: enterprise-firewall --mode disabled: host candidates only across two NATs)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.peers.timing import PROFILES


def timed_run(args: list[str], timing: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "result.json"
        command = [sys.executable, "-m", "lab", "run", *args, "--timing", timing]
        started = time.perf_counter()
        subprocess.run([*command, "--json", str(path), "--quiet"], capture_output=True, timeout=600)
        elapsed = time.perf_counter() - started
        return elapsed, json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    args = sys.argv[1:] or ["enterprise-firewall", "--mode", "disabled"]
    print(f"scenario: {' '.join(args)}")
    print(
        f"{'timing':<7} {'wall s':>7} {'check timeout s':>16}  outcome  kvs_status  non-final pairs"
    )
    for timing in ("fast", "kvs"):
        elapsed, result = timed_run(args, timing)
        status = (result.get("kvs_status") or {}).get("code")
        unfinished = sum(p["state"] not in ("succeeded", "failed") for p in result.get("pairs", []))
        print(
            f"{timing:<7} {elapsed:>7.2f} {PROFILES[timing].check_timeout_s:>16.1f}  "
            f"{result.get('outcome', '?'):<8} {status or '-':<11} {unfinished}"
        )


if __name__ == "__main__":
    main()
