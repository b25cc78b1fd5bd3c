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


@pytest.mark.usefixtures("restore_logging")
def test_a_broker_outage_is_one_warning_per_try_and_no_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What aiormq and aio-pika log when the broker goes away (their own calls, verbatim).
    configure_logging("invitation", "INFO", "json")
    aiormq = logging.getLogger("aiormq.connection")
    aio_pika = logging.getLogger("aio_pika.robust_connection")
    tools = logging.getLogger("aio_pika.tools")

    class RobustChannel:
        def __repr__(self) -> str:
            return "<OneShotCallback: cb=<bound method RobustChannel._on_close of ...>>"

    aiormq.error(
        'Unexpected connection close from remote "%s", '
        "Connection.Close(reply_code=%r, reply_text=%r)",
        "amqp://guest:******@127.0.0.1/",
        320,
        "CONNECTION_FORCED - broker forced connection closure",
    )
    try:
        raise ConnectionResetError("reset")
    except ConnectionResetError as error:
        aiormq.warning("Cancelling cause reader exited abnormally", exc_info=error)
    tools.error(
        "Callback %r error: %s: %s",
        RobustChannel(),
        "ChannelInvalidStateError",
        "No active transport in channel",
    )
    aiormq.error("error when creating transport: %r", ConnectionRefusedError(111, "refused"))
    aio_pika.warning(
        'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
        "amqp://guest:******@127.0.0.1/",
        ConnectionRefusedError(111, "refused"),
        1.0,
    )
    tools.error("Callback %r error: %s: %s", "<a callback of ours>", "ValueError", "a bug")

    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["logger"], r["level"]) for r in records] == [
        ("aiormq.connection", "warning"),  # the close, once
        ("aiormq.connection", "warning"),
        ("aio_pika.robust_connection", "warning"),  # the try, with its next delay
        ("aio_pika.tools", "error"),  # anything else stays as loud as it was
    ]
    assert "Reconnecting after 1.0 seconds" in records[2]["message"]
    assert all("exception" not in r for r in records)
