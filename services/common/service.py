"""Lifecycle helpers: run an asyncio service until SIGTERM/SIGINT, then let it drain; tune the
cyclic garbage collector for services that allocate per message."""

from __future__ import annotations

import asyncio
import gc
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


def collect_garbage_less_often(gen0_threshold: int) -> None:
    """Freeze what start-up allocated and run young-generation collections every `gen0_threshold`
    allocations instead of Python's default 700 (0: leave the interpreter's setting alone).

    Services that allocate a few dozen objects per message while holding many long-lived ones (the
    normalizer's open tracks, the writer's batch) spent up to a third of their CPU in the cyclic
    collector at the default. Process-wide: it also applies to components sharing the process."""
    if gen0_threshold <= 0:
        return
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
