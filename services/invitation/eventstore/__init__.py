"""The one door to the invitation service's event store.

The event store is the system of record and the outbox: the invitation service writes
it, and the relay, the notifier, the expiry service and the operator CLI read it. They
import it from here and nothing else of the invitation service. It sits right above the
invitation domain (stored topics, stream ids) and below the use cases.

- `store.py`: the eventsourcing application and how DATABASE_URL opens it;
- `side_tables.py`: replies (idempotency) and sealed secrets, written with the events;
- `postgres.py`, `postgres_audit.py`, `sqlite.py`: one recorder per database backend,
  with its audit tables;
- `chain.py`, `verify.py`: the hash chain and the tamper check;
- `envelopes.py`, `event_log.py`: stored events read as the contract's envelopes;
- `read_model/`: the tables queries read, kept in the same transaction as the events,
  and rebuilt from them (`read_model/rebuild.py`).
"""

from services.invitation.domain.batch import TOPIC as BATCH_TOPIC
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid, membership_uuid
from services.invitation.eventstore.chain import (
    GENESIS,
    AuditTables,
    Checkpoint,
    StreamRow,
    checkpoint_key,
    link_hash,
)
from services.invitation.eventstore.envelopes import (
    PUBLISHED_TOPICS,
    event_id,
    settings_json,
    to_envelope,
)
from services.invitation.eventstore.event_log import EventLog
from services.invitation.eventstore.event_types import PUBLISHED_EVENT_TYPES
from services.invitation.eventstore.postgres import (
    PostgresInvitationRecorder,
    PostgresTrackingRecorderSerialised,
)
from services.invitation.eventstore.read_model import (
    BatchSummary,
    InvitationRow,
    MemberRow,
    ReadModelTables,
    ReportLine,
)
from services.invitation.eventstore.side_tables import (
    SealedPasswords,
    SideTables,
    SideWrites,
    StoredReply,
)
from services.invitation.eventstore.sqlite import SQLiteInvitationRecorder
from services.invitation.eventstore.store import InvitationStore, store_env
from services.invitation.eventstore.verify import (
    Problem,
    Verification,
    sign_checkpoint,
    verify,
)

__all__ = [
    "BATCH_TOPIC",
    "GENESIS",
    "PUBLISHED_EVENT_TYPES",
    "PUBLISHED_TOPICS",
    "AuditTables",
    "BatchSummary",
    "Checkpoint",
    "DomainError",
    "EventLog",
    "InvitationRow",
    "InvitationStore",
    "MemberRow",
    "PostgresInvitationRecorder",
    "PostgresTrackingRecorderSerialised",
    "Problem",
    "ReadModelTables",
    "ReportLine",
    "SQLiteInvitationRecorder",
    "SealedPasswords",
    "SideTables",
    "SideWrites",
    "StoredReply",
    "StreamRow",
    "Verification",
    "account_uuid",
    "checkpoint_key",
    "event_id",
    "link_hash",
    "membership_uuid",
    "normalise_email",
    "settings_json",
    "sign_checkpoint",
    "store_env",
    "to_envelope",
    "verify",
]
