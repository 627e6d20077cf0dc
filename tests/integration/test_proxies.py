"""Proxy-only edges for real (root): the edge forwards nothing, and squid (HTTP CONNECT)
or Dante (SOCKS5), started for the run on the edge, is the only way out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.network.build import LabNetwork
from lab.scenario.dns import ServiceNames
from lab.scenario.scenario import load_scenario
from lab.servers.launch import start_servers
from lab.servers.proxy import log_path, proxy_for
from lab.sweeps.matrix_cells import cell_documents

pytestmark = pytest.mark.root

# The run's signaling server, TLS on 443, by name: the proxy resolves it through the lab's
# DNS (squid and Dante read the edge's resolv.conf of the run).
SIGNALING = f"https://{ServiceNames.for_region('us-west-2').wss}/"


def curl(network: LabNetwork, host: str, *args: str) -> str:
    """The HTTP status curl got from the signaling server (000: no connection)."""
    command = ["curl", "-sk", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", *args, SIGNALING]
    return network.run(host, command, timeout=10).stdout.decode()


def test_the_edge_forwards_nothing_and_its_proxy_is_the_way_out(tmp_path: Path) -> None:
    topology, scenario_document = cell_documents("https-proxy", "socks5-proxy")
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topology))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario_document))
    scenario = load_scenario(str(tmp_path / "scenario.yaml"))
    workdir = tmp_path / "run"
    workdir.mkdir()
    with LabNetwork(scenario.topology, scenario.conditions, workdir) as network:
        start_servers(network, scenario, workdir, "coturn")  # starts the proxies too
        # The program follows mnexec's and the resolver's prefix (lab/network/resolver.py).
        names = {p: {"squid", "danted"} & set(p.args) for p in network.processes}
        proxies = [p for p, name in names.items() if name]
        assert sorted(names[p].pop() for p in proxies) == ["danted", "squid"]
        https, socks = proxy_for(scenario, "viewer"), proxy_for(scenario, "master")
        assert https is not None and socks is not None
        assert curl(network, "viewer") == "000"  # nothing is forwarded
        assert curl(network, "master") == "000"
        # The signaling server answers (403: the request is not signed): the tunnel works.
        assert curl(network, "viewer", "--proxy", https.url) == "403"
        assert curl(network, "master", "--proxy", socks.url.replace("socks5", "socks5h")) == "403"
        assert "TCP_TUNNEL/200" in log_path(https, workdir).read_text()
    # Started with the run's processes, stopped with them.
    assert len(proxies) == 2 and all(p.poll() is not None for p in proxies)
