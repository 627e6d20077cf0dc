"""The choices the run commands share: timing profiles, traversal modes, agents, servers."""

from enum import StrEnum


class Timing(StrEnum):
    fast = "fast"
    kvs = "kvs"


class Mode(StrEnum):
    stun_turn = "stun-turn"
    turn_only = "turn-only"
    stun_only = "stun-only"
    disabled = "disabled"


class Agent(StrEnum):
    aiortc = "aiortc"
    chromium = "chromium"
    firefox = "firefox"
    kvs_js = "kvs-js"


class Servers(StrEnum):
    coturn = "coturn"
    mock = "mock"
