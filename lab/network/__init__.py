"""The emulated network: namespaces, links, NATs, firewalls, impairments, events.

Mininet's `mininet.node` imports `distutils.version`. Where setuptools' distutils shim is
installed (a virtualenv's `distutils-precedence.pth`), that import loads all of
setuptools and pkg_resources: about 0.1 s of every `lab run`. Python 3.11 still ships
its own distutils, so the shim is taken out and that distutils imported first.
"""

import sys
import warnings

if sys.version_info < (3, 12):
    try:
        import _distutils_hack
    except ImportError:
        pass
    else:
        _distutils_hack.remove_shim()
    with warnings.catch_warnings():  # its deprecation is Mininet's business, not the user's
        warnings.simplefilter("ignore", DeprecationWarning)
        import distutils.version  # noqa: F401
