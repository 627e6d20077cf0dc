"""The mock server's configuration, loaded from the JSON the lab writes.

Parsing is strict (unknown keys are errors) so a typo in a scenario's fault cannot
silently give a fault-free server and a scenario that lies.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject

TRANSPORTS = ("udp", "tcp", "tls")
METHODS = ("binding", "allocate", "refresh", "create_permission", "channel_bind", "send", "data")
CREDENTIAL_FAULTS = ("valid", "wrong", "expired")
AUTH_MODES = ("rest", "static", "none")


class ConfigError(ValueError):
    """The configuration cannot describe a server."""


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    transport: str


@dataclass(frozen=True)
class Alternate:
    """RFC 5780's second address and second port."""

    address: str
    port: int


@dataclass(frozen=True)
class Auth:
    mode: str = "none"
    secret: str | None = None
    users: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tls:
    cert: str
    key: str


@dataclass(frozen=True)
class Rule:
    """Matches requests by method and, when given, by the transport they came on."""

    method: str
    transport: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Faults:
    forbid_peers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    credentials: str = "valid"
    quota: int | None = None
    drop: tuple[Rule, ...] = ()
    delay: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Lifetimes:
    """RFC 8656 timers, in seconds; overridable so the lab can watch things expire."""

    allocation_default: int = 600
    allocation_max: int = 3600
    permission: int = 300
    channel: int = 600


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[Listener, ...]
    relay_address: str
    realm: str = "ice-lab"
    alternate: Alternate | None = None
    auth: Auth = field(default_factory=Auth)
    tls: Tls | None = None
    faults: Faults = field(default_factory=Faults)
    request_log: str | None = None
    lifetimes: Lifetimes = field(default_factory=Lifetimes)


def _check_keys(section: str, data: JsonObject, allowed: set[str]) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{section}: expected an object")
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{section}: unknown keys {sorted(unknown)}")


def _choice(section: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{section}: {value!r} is not one of {list(allowed)}")
    return str(value)


def _address(section: str, value: Any) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ConfigError(f"{section}: {value!r} is not an IP address") from exc


def _port(section: str, value: Any, allow_zero: bool = False) -> int:
    if not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        raise ConfigError(f"{section}: {value!r} is not a port")
    return value


def _listener(data: JsonObject) -> Listener:
    _check_keys("listen[]", data, {"address", "port", "transport"})
    return Listener(
        _address("listen[].address", data.get("address")),
        _port("listen[].port", data.get("port"), allow_zero=True),
        _choice("listen[].transport", data.get("transport", "udp"), TRANSPORTS),
    )


def _auth(data: JsonObject) -> Auth:
    _check_keys("auth", data, {"mode", "secret", "users"})
    mode = _choice("auth.mode", data.get("mode", "none"), AUTH_MODES)
    if mode == "rest" and not isinstance(data.get("secret"), str):
        raise ConfigError("auth.secret: required for mode 'rest'")
    users = data.get("users", {})
    if mode == "static" and (not isinstance(users, dict) or not users):
        raise ConfigError("auth.users: required for mode 'static'")
    return Auth(mode, data.get("secret"), {str(k): str(v) for k, v in users.items()})


def _rule(section: str, data: JsonObject, needs_seconds: bool) -> Rule:
    _check_keys(
        section,
        data,
        {"method", "transport", "seconds"}
        if needs_seconds
        else {
            "method",
            "transport",
        },
    )
    method = _choice(f"{section}.method", data.get("method"), METHODS)
    transport = data.get("transport")
    if transport is not None:
        _choice(f"{section}.transport", transport, TRANSPORTS)
    seconds = data.get("seconds", 0.0)
    if needs_seconds and (not isinstance(seconds, int | float) or seconds < 0):
        raise ConfigError(f"{section}.seconds: expected a number >= 0")
    return Rule(method, transport, float(seconds))


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ConfigError(f"faults.forbid_peers: {value!r} is not a network") from exc


def _faults(data: JsonObject) -> Faults:
    _check_keys("faults", data, {"forbid_peers", "credentials", "quota", "drop", "delay"})
    quota = data.get("quota")
    if quota is not None and (not isinstance(quota, int) or quota < 0):
        raise ConfigError("faults.quota: expected an integer >= 0")
    return Faults(
        forbid_peers=tuple(_network(v) for v in data.get("forbid_peers", [])),
        credentials=_choice(
            "faults.credentials", data.get("credentials", "valid"), CREDENTIAL_FAULTS
        ),
        quota=quota,
        drop=tuple(_rule("faults.drop[]", r, False) for r in data.get("drop", [])),
        delay=tuple(_rule("faults.delay[]", r, True) for r in data.get("delay", [])),
    )


def _lifetimes(data: JsonObject) -> Lifetimes:
    names = {"allocation_default", "allocation_max", "permission", "channel"}
    _check_keys("lifetimes", data, names)
    for name, value in data.items():
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"lifetimes.{name}: expected a positive integer")
    return Lifetimes(**data)


def config_from_dict(data: JsonObject) -> ServerConfig:
    """Validate and convert the JSON object; raises ConfigError with the offending key."""
    top = {"listen", "alternate", "relay_address", "realm", "auth", "tls", "faults"}
    _check_keys("config", data, top | {"request_log", "lifetimes"})
    listen = tuple(_listener(item) for item in data.get("listen", []))
    if not listen:
        raise ConfigError("listen: at least one listener is required")
    alternate = None
    if data.get("alternate") is not None:
        alt = data["alternate"]
        _check_keys("alternate", alt, {"address", "port"})
        alternate = Alternate(
            _address("alternate.address", alt.get("address")),
            _port("alternate.port", alt.get("port")),
        )
    tls = None
    if data.get("tls") is not None:
        _check_keys("tls", data["tls"], {"cert", "key"})
        tls = Tls(str(data["tls"]["cert"]), str(data["tls"]["key"]))
    if tls is None and any(item.transport == "tls" for item in listen):
        raise ConfigError("tls: a 'tls' listener needs tls.cert and tls.key")
    return ServerConfig(
        listen=listen,
        relay_address=_address("relay_address", data.get("relay_address", listen[0].address)),
        realm=str(data.get("realm", "ice-lab")),
        alternate=alternate,
        auth=_auth(data.get("auth", {"mode": "none"})),
        tls=tls,
        faults=_faults(data.get("faults", {})),
        request_log=data.get("request_log"),
        lifetimes=_lifetimes(data.get("lifetimes", {})),
    )


def load_config(path: str | Path) -> ServerConfig:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return config_from_dict(data)
