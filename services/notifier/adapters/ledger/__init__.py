"""The email ledger: the notifier's own tables (see common.py)."""

from services.notifier.adapters.ledger.common import (
    Delivery,
    Json,
    NotifierStore,
    OutboxEmail,
    PlanStep,
    StateLoader,
    _Postgres,
    open_store,
)

__all__ = [
    "Delivery",
    "Json",
    "NotifierStore",
    "OutboxEmail",
    "PlanStep",
    "StateLoader",
    "_Postgres",
    "open_store",
]
