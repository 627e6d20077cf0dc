"""How precise and how cheap is link delay without netem?

1. Precision: for 20, 100 and 300 ms one way on the viewer's link (both ways), the round
   trip ping measures across that link and the one ICE measures on the viewer's
   selected pair (`lab run`, STUN-only peers), against the configured round trip plus
   the undelayed one. Target: within 5 %.
2. Throughput and cost: 1200-byte UDP payloads sent from the viewer through a 100 ms
   delay line at rising rates: what arrives, the one-way delay it had (from the
   sender's clock to the receiving kernel's timestamp: one machine, one clock), and the
   delay line's CPU time (user + system, % of one core). Target: at least 50 Mbit/s.
   Then one TCP stream through 20 ms.

Each mechanism the kernel has is measured: the delay line always, netem where sch_netem
exists (or name them: --mechanisms delay-line,netem).

Usage: sudo .venv/bin/python benchmarks/delay_line.py [--mechanisms M,..] [--delays 20,100,300]
       [--rates 25,50,100,200,400] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from lab.network.build import LabNetwork
from lab.network.impairments import Impairments, netem_available
from lab.scenario.scenario import NodeConditions, load_scenario

VIEWER_GW = "192.168.2.1"
TARGET = 0.05
PAYLOAD = 1200

SCENARIO = """name: delay-benchmark
description: home-nat-both, the viewer's link delayed
topology: two-homes
conditions:
  {viewer}
  viewer-gw: {{nat: port-restricted-cone}}
  master-gw: {{nat: port-restricted-cone}}
peers:
  viewer: {{host: viewer, mode: stun-only}}
  master: {{host: master, mode: stun-only}}
expect: {{outcome: connected}}
"""

RECEIVER = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS: when the kernel got it
s.bind((sys.argv[1], 5002))
s.settimeout(3)
print("ready", flush=True)
delays, seqs, first, last = [], [], None, None
buffer = bytearray(2048)
while True:
    try:
        size, ancillary, _, _ = s.recvmsg_into([buffer], socket.CMSG_SPACE(16))
    except socket.timeout:
        break
    seconds, nanoseconds = struct.unpack("@qq", ancillary[0][2][:16])
    now = seconds + nanoseconds / 1e9
    seq, sent = struct.unpack_from("!Qd", buffer)
    first = first or now
    last = now
    delays.append((now - sent) * 1000)
    seqs.append(seq)
late = sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
print(len(seqs), len(set(seqs)), late, (last - first) if first else 0.0)
print(" ".join(f"{d:.3f}" for d in delays))
"""

SENDER = """
import socket, struct, sys, time
address, pps, seconds, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
padding = bytes(size - 16)
start = time.monotonic()
sent = 0
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    due = int((now - start) * pps) + 1
    while sent < due:
        try:
            s.sendto(struct.pack("!Qd", sent, time.time()) + padding, (address, 5002))
        except OSError:
            pass
        sent += 1
    time.sleep(0.0002)
print(sent)
"""


def viewer_delayed(impairment: Impairments | None) -> tuple:
    scenario = load_scenario("home-nat-both")
    conditions = dict(scenario.conditions)
    if impairment is not None:
        conditions["viewer"] = NodeConditions(impairments=(impairment,))
    return scenario.topology, conditions


def ping_ms(network: LabNetwork, count: int = 20) -> list[float]:
    network.run("viewer", ["ping", "-n", "-c", "1", "-W", "3", VIEWER_GW], timeout=10)
    command = ["ping", "-n", "-i", "0.05", "-c", str(count), "-W", "3", VIEWER_GW]
    output = network.run("viewer", command, timeout=120).stdout.decode()
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", output)]


def ping_round_trip(impairment: Impairments | None) -> list[float]:
    with tempfile.TemporaryDirectory() as directory:
        topology, conditions = viewer_delayed(impairment)
        with LabNetwork(topology, conditions, Path(directory)) as network:
            return ping_ms(network)


def ice_round_trip(delay_ms: float, mechanism: str) -> tuple[float | None, str]:
    """The viewer's selected pair's round trip in a `lab run`, or None and why not."""
    viewer = (
        f"viewer: {{impairments: {{delay_ms: {delay_ms:g}, mechanism: {mechanism}}}}}"
        if delay_ms
        else ""
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "delay-benchmark.yaml"
        path.write_text(SCENARIO.format(viewer=viewer))
        result_path = Path(directory) / "result.json"
        command = [sys.executable, "-m", "lab", "run", str(path), "--json", str(result_path)]
        completed = subprocess.run([*command, "--quiet"], capture_output=True, timeout=600)
        if not result_path.exists():
            return None, (completed.stderr.decode().strip().splitlines() or ["no result"])[-1]
        result = json.loads(result_path.read_text())
        selected = result["selected"].get("viewer")
        if not selected:
            return None, f"outcome {result['outcome']}"
        return selected["rtt_ms"], ""


def verdict(measured: float | None, expected: float) -> str:
    if measured is None:
        return "   -     -"
    error = (measured - expected) / expected
    return f"{error * 100:+5.1f}% {'ok' if abs(error) <= TARGET else 'MISS'}"


def precision(mechanisms: list[str], delays: list[float]) -> None:
    plain_ping = statistics.median(ping_round_trip(None))
    plain_ice = ice_round_trip(0, "auto")[0] or 0.0
    print(f"undelayed round trip: ping {plain_ping:.3f} ms, ICE selected pair {plain_ice:.2f} ms")
    print(
        f"{'mechanism':<11}{'one way':>8}{'expected':>10}{'ping median':>13}{'min..max':>17}"
        f"{'error':>8}{'':5}{'ICE rtt':>9}{'error':>8}"
    )
    for mechanism in mechanisms:
        for delay in delays:
            impairment = Impairments("eth0", delay_ms=delay, mechanism=mechanism)
            pings = ping_round_trip(impairment)
            median = statistics.median(pings)
            ice, why = ice_round_trip(delay, mechanism)
            ping_expected = 2 * delay + plain_ping
            ice_expected = 2 * delay + plain_ice
            ice_text = f"{ice:9.2f}" if ice is not None else f"{'failed':>9}"
            print(
                f"{mechanism:<11}{delay:>6g}ms{ping_expected:>9.2f} {median:>12.2f}"
                f"{min(pings):>9.2f}..{max(pings):<7.2f}{verdict(median, ping_expected):>13}"
                f"{ice_text}{verdict(ice, ice_expected):>13}  {why}"
            )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def blast(network: LabNetwork, mbit: float, seconds: float) -> dict:
    """Send `mbit` of 1200-byte UDP payloads from the viewer to viewer-gw for `seconds`."""
    pps = round(mbit * 1e6 / 8 / PAYLOAD)
    receiver = network.popen(
        "viewer-gw", [sys.executable, "-c", RECEIVER, VIEWER_GW], stdout=subprocess.PIPE
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == b"ready"
    lines = list(network.delay_lines.values())
    cpu_before = sum(cpu_seconds(p.pid) for p in lines)
    sender = network.run(
        "viewer",
        [sys.executable, "-c", SENDER, VIEWER_GW, str(pps), str(seconds), str(PAYLOAD)],
        timeout=seconds + 30,
    )
    out, _ = receiver.communicate(timeout=seconds + 30)
    # Idle, the line takes no CPU: what it used, it used while the sender sent.
    cpu = sum(cpu_seconds(p.pid) for p in lines) - cpu_before
    counts, delays_line = out.decode().splitlines()[:2]
    received, unique, late, span = counts.split()
    delays = sorted(float(d) for d in delays_line.split())
    sent = int(sender.stdout.decode().strip())
    return {
        "mbit": mbit,
        "sent": sent,
        "received": int(unique),
        "late": int(late),
        "rate": int(unique) * PAYLOAD * 8 / float(span) / 1e6 if float(span) else 0.0,
        "p50": delays[len(delays) // 2] if delays else 0.0,
        "p99": delays[int(len(delays) * 0.99)] if delays else 0.0,
        "max": delays[-1] if delays else 0.0,
        "cpu": 100 * cpu / seconds,
    }


def throughput(mechanisms: list[str], rates: list[float], seconds: float) -> None:
    print(
        f"\n{PAYLOAD}-byte UDP payloads through 100 ms one way, {seconds:g} s each "
        "(CPU: the delay line's process, % of one core)"
    )
    print(
        f"{'mechanism':<11}{'offered':>9}{'sent':>8}{'received':>10}{'lost':>7}{'Mbit/s':>8}"
        f"{'delay p50':>11}{'p99':>8}{'max':>8}{'CPU':>6}"
    )
    for mechanism in mechanisms:
        impairment = Impairments("eth0", delay_ms=100, direction="out", mechanism=mechanism)
        with tempfile.TemporaryDirectory() as directory:
            topology, conditions = viewer_delayed(impairment)
            with LabNetwork(topology, conditions, Path(directory)) as network:
                network.run("viewer", ["ping", "-c", "1", "-W", "3", VIEWER_GW], timeout=10)
                for mbit in rates:
                    row = blast(network, mbit, seconds)
                    lost = 100 * (1 - row["received"] / row["sent"]) if row["sent"] else 0.0
                    print(
                        f"{mechanism:<11}{mbit:>6g}Mb/s{row['sent']:>8}{row['received']:>10}"
                        f"{lost:>6.2f}%{row['rate']:>8.1f}{row['p50']:>9.2f}ms"
                        f"{row['p99']:>8.2f}{row['max']:>8.2f}{row['cpu']:>5.0f}%"
                    )


TCP_RECEIVER = """
import socket, sys, time
server = socket.socket()
server.bind((sys.argv[1], 5003))
server.listen(1)
print("ready", flush=True)
connection, _ = server.accept()
total, started = 0, None
while True:
    chunk = connection.recv(1 << 16)
    if not chunk:
        break
    started = started or time.monotonic()
    total += len(chunk)
print(total * 8 / 1e6 / (time.monotonic() - started))
"""

TCP_SENDER = """
import socket, sys, time
connection = socket.create_connection((sys.argv[1], 5003))
block, deadline = bytes(1 << 16), time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    connection.sendall(block)
connection.close()
"""


def tcp(mechanisms: list[str], seconds: float) -> None:
    """One TCP stream through 20 ms one way (offloaded segments pass the delay line whole)."""
    print(f"\nTCP, one stream, {seconds:g} s, through 20 ms one way (40 ms round trip)")
    for mechanism in mechanisms:
        impairment = Impairments("eth0", delay_ms=20, mechanism=mechanism)
        with tempfile.TemporaryDirectory() as directory:
            topology, conditions = viewer_delayed(impairment)
            with LabNetwork(topology, conditions, Path(directory)) as network:
                receiver = network.popen(
                    "viewer-gw",
                    [sys.executable, "-c", TCP_RECEIVER, VIEWER_GW],
                    stdout=subprocess.PIPE,
                )
                assert receiver.stdout is not None
                assert receiver.stdout.readline().strip() == b"ready"
                lines = list(network.delay_lines.values())
                before = sum(cpu_seconds(p.pid) for p in lines)
                network.run(
                    "viewer",
                    [sys.executable, "-c", TCP_SENDER, VIEWER_GW, str(seconds)],
                    timeout=seconds + 30,
                )
                out, _ = receiver.communicate(timeout=30)
                cpu = 100 * (sum(cpu_seconds(p.pid) for p in lines) - before) / seconds
                print(f"{mechanism:<11}{float(out):>8.0f} Mbit/s, delay line CPU {cpu:.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "delay-line,netem" if netem_available() else "delay-line"
    parser.add_argument("--mechanisms", default=default)
    parser.add_argument("--delays", default="20,100,300")
    parser.add_argument("--rates", default="25,50,100,200,400")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    mechanisms = args.mechanisms.split(",")
    print(f"kernel {os.uname().release}, netem {'present' if netem_available() else 'absent'}")
    precision(mechanisms, [float(d) for d in args.delays.split(",")])
    throughput(mechanisms, [float(r) for r in args.rates.split(",")], args.seconds)
    tcp(mechanisms, args.seconds)


if __name__ == "__main__":
    main()
