"""Link impairments: loss, rate, delay and jitter (being built)."""

from __future__ import annotations

from typing import Any

from lab.topology import Node


def render_impairments(node: Node, impairments: dict[str, Any] | None) -> list[str]:
    """Shell commands that impair the node's links (pure: unit-tested)."""
    return []
