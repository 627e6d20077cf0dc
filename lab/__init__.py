"""ice-lab: a network lab for WebRTC connectivity."""

__version__ = "0.1.0"
