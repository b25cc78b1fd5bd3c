"""Who may do what on the broker: writes deploy/rabbitmq/definitions.json.

    .venv/bin/python -m deploy.rabbitmq.definitions     # after changing a table below

RabbitMQ loads that file at boot (`load_definitions`, see rabbitmq.conf beside it); the
passwords are added on the deploying machine by deploy/make_secrets.py. Every permission
regex is built here from the tables below, so none can drift from another, and
tests/ops/test_rabbitmq_definitions.py fails when the contract gains a command that
`PUBLIC_COMMANDS` or `SERVICE_COMMANDS` does not classify, or when the file is stale.

Routing keys on `invitations.commands` are command names (the contract), so a topic
permission on that exchange is the list of commands a user may send. No user has the
`impersonator` tag: the `user_id` RabbitMQ checks is then proof of the sender.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared import contract
from shared.contract import COMMANDS
from shared.topology import (
    COMMANDS_EXCHANGE_NAME,
    COMMANDS_QUEUE_NAME,
    DEAD_LETTER_EXCHANGE_NAME,
    DEAD_LETTER_QUEUE_NAME,
    EVENTS_EXCHANGE_NAME,
)

DEFINITIONS = Path(__file__).with_name("definitions.json")
VHOST = "/"
# The default exchange, as permissions name it: replies and dead letters go through it.
DEFAULT_EXCHANGE = "amq.default"
# A queue declared without a name (CommandClient's reply queue): aio-pika's robust channel
# names it `amq_<uuid>` itself (to declare it again after a reconnect); other clients let
# the server name it `amq.gen-...`.
UNNAMED_QUEUES = ("amq_", "amq.gen-")

# Commands any backend may send: the contract's public ones (its one table, AUDIENCE).
PUBLIC_COMMANDS = contract.PUBLIC_COMMANDS
# Internal commands, each sent by one service only (the invitation service accepts them
# from INTERNAL_SENDERS alone; the broker keeps everyone else from even sending them).
SERVICE_COMMANDS: dict[str, frozenset[str]] = {
    "notifier": frozenset(
        {
            "record_temp_password_delivered",
            "record_notification_failed",
            "record_invitation_email_sent",
        }
    ),
    "expiry": frozenset(
        {
            "expire_contractor",
            "expire_temp_password",
            "lapse_invitation",
            "remind_contractor_expiry",
        }
    ),
}


def allow(*names: str, prefixes: Iterable[str] = ()) -> str:
    """A regex matching these names and names starting with `prefixes`, nothing else."""
    alternatives = [re.escape(n) for n in sorted(set(names))]
    alternatives += [re.escape(p) + ".*" for p in sorted(set(prefixes))]
    return "^(" + "|".join(alternatives) + ")$" if alternatives else "^$"


COMMANDS_X = COMMANDS_EXCHANGE_NAME
EVENTS_X = EVENTS_EXCHANGE_NAME

# user -> (configure, write, read) on VHOST. RabbitMQ asks for: configure to declare or
# delete a queue or exchange (a non-passive declare of one that exists included); write to
# publish to an exchange, to bind a queue (on the queue) and to declare a queue whose
# dead-letter exchange it is (on that exchange); read to consume a queue, to bind to an
# exchange (on the exchange) and to declare a queue with a dead-letter exchange.
PERMISSIONS: dict[str, tuple[str, str, str]] = {
    # Operators' login for the management UI; no service uses it.
    "admin": (".*", ".*", ".*"),
    "invitation": (
        allow(
            COMMANDS_X,
            COMMANDS_QUEUE_NAME,
            DEAD_LETTER_EXCHANGE_NAME,
            DEAD_LETTER_QUEUE_NAME,
            EVENTS_X,
        ),
        # Events; replies and dead letters through the default exchange; its bindings.
        allow(
            EVENTS_X,
            DEFAULT_EXCHANGE,
            COMMANDS_QUEUE_NAME,
            DEAD_LETTER_EXCHANGE_NAME,
            DEAD_LETTER_QUEUE_NAME,
        ),
        allow(COMMANDS_X, COMMANDS_QUEUE_NAME, DEAD_LETTER_EXCHANGE_NAME),
    ),
    "notifier": (
        allow(COMMANDS_X, EVENTS_X, "notifier.events", "notifier.events.dead"),
        # amq.default: its wake-up queue dead-letters through the default exchange.
        allow(COMMANDS_X, DEFAULT_EXCHANGE, "notifier.events"),
        allow(EVENTS_X, "notifier.events"),
    ),
    "expiry": (
        allow(COMMANDS_X, prefixes=["expiry.replies."]),
        allow(COMMANDS_X),
        allow(prefixes=["expiry.replies."]),
    ),
    # The operator CLI's `republish`: events again, nothing else.
    "cli": (allow(EVENTS_X), allow(EVENTS_X), allow()),
    # A backend as shared/command_client.py is one: commands, replies to an unnamed
    # queue, and queues of its own (`backend.*`) bound to the events exchange.
    "backend": (
        allow(COMMANDS_X, prefixes=[*UNNAMED_QUEUES, "backend."]),
        allow(COMMANDS_X, prefixes=["backend."]),
        allow(EVENTS_X, prefixes=[*UNNAMED_QUEUES, "backend."]),
    ),
}
TAGS: dict[str, list[str]] = {"admin": ["administrator"]}

# user -> commands it may publish to the commands exchange. Users absent here have no
# write permission on that exchange at all.
SENDERS: dict[str, frozenset[str]] = {"backend": PUBLIC_COMMANDS, **SERVICE_COMMANDS}


def unclassified(commands: Iterable[str]) -> set[str]:
    """Commands of the contract that no table above says who may send."""
    classified = PUBLIC_COMMANDS.union(*SERVICE_COMMANDS.values())
    return set(commands) - classified


# Each internal command of the contract is some service's, and only those are.
assert frozenset().union(*SERVICE_COMMANDS.values()) == contract.INTERNAL_COMMANDS


def definitions() -> dict[str, Any]:
    missing = unclassified(COMMANDS)
    if missing:
        raise SystemExit(f"classify these commands first: {', '.join(sorted(missing))}")
    return {
        "vhosts": [{"name": VHOST}],
        # Passwords are added by deploy/make_secrets.py; never in this repository.
        "users": [{"name": user, "tags": TAGS.get(user, [])} for user in PERMISSIONS],
        "permissions": [
            {"user": user, "vhost": VHOST, "configure": c, "write": w, "read": r}
            for user, (c, w, r) in PERMISSIONS.items()
        ],
        "topic_permissions": [
            {
                "user": user,
                "vhost": VHOST,
                "exchange": COMMANDS_EXCHANGE_NAME,
                "write": allow(*commands),
                # Read on a topic exchange governs binding keys: nobody binds to commands
                # except the invitation service, which has no topic permission here.
                "read": "^$",
            }
            for user, commands in SENDERS.items()
        ],
    }


def render() -> str:
    return json.dumps(definitions(), indent=2) + "\n"


if __name__ == "__main__":
    DEFINITIONS.write_text(render())
    print(f"wrote {DEFINITIONS}", file=sys.stderr)
