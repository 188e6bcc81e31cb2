"""Waiting on conditions in async tests (never sleeping blindly)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(condition: Callable[[], Any], what: str, within_s: float) -> Any:
    """Poll `condition` (a plain or async callable) every 0.1 s until it returns something truthy, and
    return that; AssertionError naming `what` after `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
