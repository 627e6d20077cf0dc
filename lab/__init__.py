"""ice-lab: a network lab for WebRTC connectivity."""

import os
import sys

__version__ = "0.1.0"

if sys.version_info < (3, 12):
    # Mininet imports distutils; through setuptools' shim that drags in pkg_resources
    # (about 0.13 s of every run). Python 3.11 still has the standard library's copy.
    os.environ.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")
