"""The two peers of a KVS signaling channel: the master (the camera, which answers) and
the viewer (which offers). Every stage names them with these words."""

from __future__ import annotations

from typing import Literal

Role = Literal["viewer", "master"]
ROLES: tuple[Role, Role] = ("viewer", "master")


def other_role(role: str) -> Role:
    """The peer across the channel from `role`."""
    return "master" if role == "viewer" else "viewer"
