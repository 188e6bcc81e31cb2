"""Lifecycle helpers: run an asyncio service until SIGTERM/SIGINT, then let it drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop`; the service then flushes, commits and returns."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, sig)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("stop requested", extra={"signal": sig.name})
    stop.set()


def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` on a fresh event loop with the stop signals wired to `stop`."""

    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)

    asyncio.run(runner())
