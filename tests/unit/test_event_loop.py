"""The services' event loop is uvloop (shared/event_loop.py)."""

from __future__ import annotations

import asyncio

import uvloop

from shared.event_loop import run


async def loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_the_services_run_their_coroutine_on_uvloop() -> None:
    assert run(loop_type()) is uvloop.Loop
