"""A 1688 Open Platform gateway emulator (PROTOCOL.md) for offline development, tests and benchmarks.

Run it with ``python -m ali1688spider.sandbox --port 0``; embed it with :func:`create_app`.
"""

from .config import SandboxConfig
from .server import create_app

__all__ = ["SandboxConfig", "create_app"]
