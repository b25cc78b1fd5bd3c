"""How the services run their event loop: uvloop, libuv's loop for asyncio.

A service's event-loop thread parses and writes AMQP frames for every command, reply,
event and ack; with the standard loop, socket writes and callback scheduling were about
a fifth of the invitation service's CPU under load (py-spy, bench/README.md). uvloop
does the same in C, with the same asyncio API.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop."""
    return uvloop.run(main)
