#!/usr/bin/env bash
# The delay figures docs/benchmarks.md puts side by side ("The VM and the container"): the same
# commands on a kernel with netem (the VM) and on one without (this project's machines, where
# `auto` takes the lab's delay line). Run as root from the repository, on either:
#
#   sudo bash scripts/vm/delay-figures.sh
#   ICE_LAB_VM_CHECK_COMMAND="bash scripts/vm/delay-figures.sh" make vm-check    # in the VM
#
# Prints the kernel and whether it has netem, benchmarks/delay_line.py's precision table for
# each mechanism there is, and for each delay scenario the mechanism `auto` chose and the
# viewer's selected pair's round trip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mkdir -p results
echo "delay-figures: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
# --scenarios-only: the two scenario runs without the benchmark (minutes on an emulated CPU).
[ "${1:-}" = --scenarios-only ] ||
    .venv/bin/python benchmarks/delay_line.py --delays 20,100,300 --rates 25 --seconds 2
for scenario in lte-viewer far-turn-server; do
    status=0
    .venv/bin/lab run "$scenario" --json "results/delay-${scenario}.json" >/dev/null 2>&1 || status=$?
    python3 - "results/delay-${scenario}.json" "$scenario" "$status" <<'EOF'
import json
import sys

path, scenario, status = sys.argv[1:]
result = json.load(open(path))
mechanisms = set()
for node, conditions in result["network"]["conditions"].items():
    impairments = (conditions or {}).get("impairments") or []
    for impairment in [impairments] if isinstance(impairments, dict) else impairments:
        if impairment.get("mechanism"):
            mechanisms.add(impairment["mechanism"])
selected = result["selected"]["viewer"] or {}
print(
    f"delay-figures: {scenario}: exit {status}, {result['outcome']}, mechanism "
    f"{','.join(sorted(mechanisms)) or '?'}, viewer's selected pair "
    f"{selected.get('local', {}).get('type')}/{selected.get('remote', {}).get('type')} "
    f"rtt {selected.get('rtt_ms')} ms"
)
EOF
done
