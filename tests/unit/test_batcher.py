"""The command batcher holds a batch while the database is away, and says so."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from services.invitation.application import IncomingCommand
from services.invitation.batcher import Batcher
from shared.contract import Reply
from shared.retry import RetryPolicy

# Delays short enough for a test, in the policy's own shape.
FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)


class DatabaseAway:
    """A service whose database refuses the first `failures` batches."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def work(
        self, batch: Sequence[IncomingCommand], job: object, rows: object = None
    ) -> tuple[list[Reply], None]:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("connection refused")
        return [Reply.accepted(None, {"n": i}) for i, _ in enumerate(batch)], None


def command() -> IncomingCommand:
    return IncomingCommand("invite_user", object())  # type: ignore[arg-type]


async def run_batcher(service: Any, **options: Any) -> Batcher:
    batcher = Batcher(service, policy=FAST, **options)
    batcher.start()
    return batcher


async def test_a_batch_waits_for_the_database_and_goes_through_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="services.invitation.batcher")
    service = DatabaseAway(failures=5)
    batcher = await run_batcher(service)
    try:
        replies = await asyncio.wait_for(
            asyncio.gather(batcher.submit(command()), batcher.submit(command())), 10
        )
    finally:
        await batcher.stop()

    assert [r.status for r in replies] == ["accepted", "accepted"]
    assert service.calls == 6
    lines = [record.getMessage() for record in caplog.records]
    waiting = [line for line in lines if line.startswith("waiting on the database")]
    # The first failed try is logged at once; the rest within the same few seconds are not.
    assert len(waiting) == 1
    assert "trying again in" in waiting[0]


async def test_a_batch_that_waited_too_long_fails_so_its_messages_go_back_to_the_broker() -> None:
    batcher = await run_batcher(DatabaseAway(failures=10_000), retry_for=0.1)
    try:
        with pytest.raises(OperationalError):
            await asyncio.wait_for(batcher.submit(command()), 10)
    finally:
        await batcher.stop()


async def test_an_error_that_is_not_the_databases_fails_the_batch_at_once() -> None:
    class Broken:
        calls = 0

        def work(
            self, batch: Sequence[IncomingCommand], job: object, rows: object = None
        ) -> list[Reply]:
            Broken.calls += 1
            raise RuntimeError("a bug")

    batcher = await run_batcher(Broken())
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            await asyncio.wait_for(batcher.submit(command()), 10)
    finally:
        await batcher.stop()
    assert Broken.calls == 1
