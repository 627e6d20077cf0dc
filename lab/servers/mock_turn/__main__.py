"""`python -m lab.servers.mock_turn --config FILE.json`: READY on stdout, stop on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .config import ConfigError, load_config
from .server import MockTurnServer


async def serve(config_path: str) -> int:
    """Run until SIGTERM/SIGINT; the exit status the process should have."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"mock_turn: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        server = MockTurnServer(config)  # opens the request log
        await server.start()
    except (OSError, ConfigError) as exc:
        print(f"mock_turn: cannot listen: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.servers.mock_turn")
    parser.add_argument("--config", required=True, help="server configuration (JSON)")
    parser.add_argument("--verbose", action="store_true", help="debug logging on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return asyncio.run(serve(args.config))


if __name__ == "__main__":
    sys.exit(main())
