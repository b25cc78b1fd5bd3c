"""How the services run their event loop: uvloop, libuv's loop for asyncio.

A service's event-loop thread parses and writes AMQP frames for every command, reply,
event and ack; with the standard loop, socket writes and callback scheduling were about
a fifth of the invitation service's CPU under load (py-spy, bench/README.md). uvloop
does the same in C, with the same asyncio API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop."""
    return uvloop.run(main)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`: whether it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11, wait_for drops a
    cancellation that arrives as the event is set (fixed in 3.12, gh-86296), so a loop
    woken often (a lease confirmed every few milliseconds) could ignore its stop() and
    run on. `asyncio.timeout` does not.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
