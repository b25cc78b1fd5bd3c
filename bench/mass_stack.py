"""The processes a mass invite runs through, for one benchmark run.

`running_stack` of `bench/services.py`: `python -m services.invitation` and
`python -m services.notifier` on a PostgreSQL schema and RabbitMQ vhost of their own
(dropped afterwards), handing their emails to the minimal SMTP sink of
`bench/smtp_sink.py` in a process of its own, as for every suite. On top of it, a
command client and who got mail and when.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench.services import running_stack
from bench.smtp_sink import SmtpSink
from shared.command_client import CommandClient


class Arrivals:
    """When each recipient got their first email (epoch seconds), read from the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._first: dict[str, float] = {}

    def _read(self) -> None:
        for email in self._sink.received():
            self._first.setdefault(email.recipient.lower(), email.at)

    def last_of(self, recipients: Iterable[str]) -> float | None:
        """When the last of `recipients` got its first mail, or None while one is missing."""
        self._read()
        times = [self._first.get(r.lower()) for r in recipients]
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    def first_of(self, recipients: Iterable[str]) -> float | None:
        """When the first of `recipients` got mail, or None if none has."""
        self._read()
        times = [t for r in recipients if (t := self._first.get(r.lower())) is not None]
        return min(times, default=None)


@dataclass
class MassStack:
    client: CommandClient
    arrivals: Arrivals
    database_url: str
    pids: dict[str, int]  # process name (the services, `smtp_sink`) -> process id

    def cpu_seconds(self, name: str) -> float:
        """CPU time (user + system) the process has used so far (Linux /proc)."""
        with open(f"/proc/{self.pids[name]}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def mass_stack(**extra_env: str) -> AsyncIterator[MassStack]:
    """Both services up, the command path and the email path each proven once."""
    env = {"LOG_LEVEL": "WARNING", **extra_env}
    async with running_stack(env=env) as stack, CommandClient(stack.amqp_url) as client:
        pids = {name: stack.pid(name) for name in stack.processes}
        pids["smtp_sink"] = stack.sink.pid
        yield MassStack(client, Arrivals(stack.sink), stack.database_url, pids)
