"""Log lines: JSON by default with the service and context fields, or readable text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from shared.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(capsys: pytest.CaptureFixture[str], fmt: str) -> str:
    configure_logging("invitation", "INFO", fmt)
    log = logging.getLogger("services.invitation.test")
    log.info(
        "invite_user accepted",
        extra={"command": "invite_user", "correlation_id": "c-1", "tenant_id": "acme"},
    )
    log.debug("not at INFO")
    return capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_service_level_and_context(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = emit(capsys, "json").splitlines()
    record = json.loads(line)
    assert record["service"] == "invitation"
    assert record["level"] == "info"
    assert record["message"] == "invite_user accepted"
    assert record["command"] == "invite_user"
    assert record["correlation_id"] == "c-1"
    assert record["tenant_id"] == "acme"
    assert record["time"].endswith("+00:00")


@pytest.mark.usefixtures("restore_logging")
def test_text_format_is_for_reading_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = emit(capsys, "text").splitlines()
    assert " invitation INFO services.invitation.test: invite_user accepted" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.usefixtures("restore_logging")
def test_an_exception_stays_on_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("notifier", "INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (line,) = capsys.readouterr().err.splitlines()
    assert "ValueError: boom" in json.loads(line)["exception"]
