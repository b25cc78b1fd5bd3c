"""Rebuilding a consumer's state from the event store (rule 28), through a tiny protocol.

Each consumer exposes, in `services/<consumer>/replay.py` (the read model: in
`services/invitation/eventstore/read_model/rebuild.py`):

    def rebuild(settings: ServiceSettings, progress: Callable[[int, int], None]) -> int

It drops and rebuilds the consumer's own state from the store from scratch, sends no
email and publishes no command (whatever was already done stays done: its records of
sent emails and issued commands are kept or rebuilt as "done"), calls
`progress(position, last_position)` now and then, and returns how many events it applied.
`settings` is the CLI's `ServiceSettings` (DATABASE_URL, AMQP_URL, the secrets key); a
consumer that needs more settings reads its own subclass from the same environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, cast

from shared.settings import ServiceSettings

Progress = Callable[[int, int], None]

CONSUMERS: dict[str, str] = {
    "notifier": "services.notifier.replay",
    "expiry": "services.expiry.replay",
    # The invitation service's read model (queries): it lives in the event store's package.
    "read-model": "services.invitation.eventstore.read_model.rebuild",
}


class Rebuild(Protocol):
    def __call__(self, settings: ServiceSettings, progress: Progress) -> int: ...


class ConsumerUnavailableError(Exception):
    """The consumer's package does not (yet) provide `rebuild`."""


def load_rebuild(consumer: str) -> Rebuild:
    module_name = CONSUMERS.get(consumer)
    if module_name is None:
        raise ConsumerUnavailableError(
            f"unknown consumer {consumer!r}; known: {', '.join(sorted(CONSUMERS))}"
        )
    expected = (
        f"{module_name}.rebuild(settings: ServiceSettings, "
        "progress: Callable[[int, int], None]) -> int"
    )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise ConsumerUnavailableError(
                f"{consumer} cannot be replayed: {module_name} does not exist; expected {expected}"
            ) from None
        raise
    rebuild = getattr(module, "rebuild", None)
    if not callable(rebuild):
        raise ConsumerUnavailableError(
            f"{consumer} cannot be replayed: {module_name} has no rebuild(); expected {expected}"
        )
    return cast("Rebuild", rebuild)
