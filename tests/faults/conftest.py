"""The fault suite's fixtures: one private cluster and node per session, a run per scenario.

Which scenarios run: those marked `faults_ci` always (scripts/test, hence .ci/run);
the others only when FAULTS=all (scripts/faults). Each scenario's figures (recovery
seconds, duplicates) go to var/faults-report.json and .md and are printed at the end.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Mailbox, Stack
from tests.faults.infra import PrivatePostgres, PrivateRabbit, missing_tools
from tests.faults.infra import private_postgres as _private_postgres
from tests.faults.infra import private_rabbit as _private_rabbit
from tests.support import ROOT

REPORT = pytest.StashKey[dict[str, dict[str, Any]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FAULTS") == "all":
        return
    kept, dropped = [], []
    for item in items:
        faults = item.get_closest_marker("faults") is not None
        ci = item.get_closest_marker("faults_ci") is not None
        (dropped if faults and not ci else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(REPORT, {})
    if not figures:
        return
    folder = ROOT / "var"
    folder.mkdir(exist_ok=True)
    (folder / "faults-report.json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = render(figures)
    (folder / "faults-report.md").write_text("\n".join(lines) + "\n")
    terminalreporter.write_sep("=", "fault scenarios (var/faults-report.md)")
    for line in lines:
        terminalreporter.write_line(line)


COLUMNS = [
    ("commands", "commands"),
    ("resends", "re-sent"),
    ("replies_extra", "extra replies"),
    ("events_republished", "events again"),
    ("emails_duplicated", "emails again"),
    ("ready_after_s", "ready after (s)"),
    ("replies_after_s", "replies after (s)"),
    ("events_after_s", "events after (s)"),
    ("emails_after_s", "emails after (s)"),
    ("reply_gap_s", "longest reply gap (s)"),
    ("email_gap_s", "longest email gap (s)"),
    ("max_leading", "max leaders"),
]


def render(figures: dict[str, dict[str, Any]]) -> list[str]:
    header = "| scenario | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [
        f"Fault scenarios, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "'after' = seconds from the fault's end (the dependency back: the first "
        "connection it took; the service restarted) to the first reply / event / email "
        "that followed.",
        "",
        header,
        "|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, row in figures.items():
        cells = [_cell(row.get(key)) for key, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [f"- {name}: {row['note']}" for name, row in figures.items() if row.get("note")]
    return lines + (["", *notes] if notes else [])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k.removesuffix('_leading')} {v:g}" for k, v in value.items())
    return str(value)


# -- the private servers -----------------------------------------------------------------


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = missing_tools()
    if reason:
        pytest.skip(f"fault suite: {reason}")
    with _private_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def private_rabbit() -> Iterator[PrivateRabbit]:
    reason = missing_tools()
    if reason:
        pytest.skip(f"fault suite: {reason}")
    with _private_rabbit() as node:
        yield node


class Run:
    """One scenario: its schema, vhost, mailbox and services, and the figures it reports."""

    def __init__(
        self, postgres: PrivatePostgres, rabbit: PrivateRabbit, logs: Path, name: str
    ) -> None:
        self.postgres, self.rabbit = postgres, rabbit
        self.database_url = postgres.schema_url()
        self.amqp_url = rabbit.vhost_url()
        self.tenant = f"faults-{uuid.uuid4().hex[:8]}"
        self.mailbox = Mailbox()
        self.stack = Stack(self.database_url, self.amqp_url, self.mailbox, logs)
        self.name = name
        self.figures: dict[str, Any] = {}


@pytest.fixture
async def run(
    request: pytest.FixtureRequest,
    private_postgres: PrivatePostgres,
    private_rabbit: PrivateRabbit,
    tmp_path: Path,
) -> AsyncIterator[Run]:
    # A scenario that failed part-way may have left a server down: up again first.
    if not _pg_up(private_postgres):
        private_postgres.start()
    if private_rabbit.process is None:
        private_rabbit.start()
    scenario = Run(private_postgres, private_rabbit, tmp_path, request.node.name)
    scenario.mailbox.start()
    try:
        yield scenario
    finally:
        scenario.stack.stop()
        scenario.mailbox.stop()
        if scenario.figures:
            request.config.stash.setdefault(REPORT, {})[scenario.name] = scenario.figures


def _pg_up(cluster: PrivatePostgres) -> bool:
    try:
        cluster.wait_up(timeout=0.5)
    except Exception:
        return False
    return True
