"""The proxies of proxy-only edges (squid, Dante): configuration rendered for one run,
and which peer uses which proxy, without root."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.scenario.scenario import Scenario, load_scenario
from lab.servers.proxy import (
    Proxy,
    command,
    proxies_of,
    proxy_for,
    render_config,
    render_danted,
    render_squid,
)
from lab.sweeps.matrix_cells import cell_documents

HTTPS = Proxy("viewer-fw", "https", "10.2.0.1", ("10.2.0.0/24",), "eth1")
SOCKS = Proxy("master-fw", "socks5", "10.1.0.1", ("10.1.0.0/24",), "eth1")


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_squid_serves_only_the_inside_from_the_inside_address_without_cache() -> None:
    conf = lines(render_squid(HTTPS))
    assert "http_port 10.2.0.1:3128" in conf
    allow = conf.index("http_access allow inside")
    assert conf.index("acl inside src 10.2.0.0/24") < allow < conf.index("http_access deny all")
    assert "cache deny all" in conf and "pid_filename none" in conf
    # Names are resolved with the node's resolv.conf of the run (the lab's DNS), not a
    # server named here.
    assert not any(line.startswith("dns_nameservers") for line in conf)
    assert render_config(HTTPS) == render_squid(HTTPS)


def test_dante_passes_socks_connect_from_the_inside_and_blocks_the_rest() -> None:
    conf = lines(render_danted(SOCKS))
    assert "internal: 10.1.0.1 port = 1080" in conf and "external: eth1" in conf
    assert "socksmethod: none" in conf
    passing = conf.index("socks pass { from: 10.1.0.0/24 to: 0.0.0.0/0 command: connect }")
    assert passing < conf.index("socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }")


def test_urls_and_command_lines() -> None:
    assert (HTTPS.url, SOCKS.url) == ("http://10.2.0.1:3128", "socks5://10.1.0.1:1080")
    assert command(HTTPS, Path("/run/x")) == ["squid", "-N", "-f", "/run/x/squid-viewer-fw.conf"]
    assert command(SOCKS, Path("/run/x")) == [
        "danted", "-f", "/run/x/danted-master-fw.conf", "-p", "/run/x/danted-master-fw.pid",
    ]  # fmt: skip


def cell(tmp_path: Path, viewer: str, master: str) -> Scenario:
    topology, scenario = cell_documents(viewer, master)
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topology))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    return load_scenario(str(tmp_path / "scenario.yaml"))


def test_each_proxy_edge_runs_one_and_its_peer_is_told_to_use_it(tmp_path: Path) -> None:
    scenario = cell(tmp_path, "https-proxy", "socks5-proxy")
    assert sorted(proxies_of(scenario), key=lambda p: p.node) == [SOCKS, HTTPS]
    assert proxy_for(scenario, "viewer") == HTTPS
    assert proxy_for(scenario, "master") == SOCKS


def test_no_proxy_without_a_proxy_edge(tmp_path: Path) -> None:
    scenario = cell(tmp_path, "udp-blocked", "symmetric-then-cone")
    assert proxies_of(scenario) == []
    assert proxy_for(scenario, "viewer") is None and proxy_for(scenario, "master") is None
