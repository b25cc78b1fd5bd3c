"""Use cases on the notifier's reports: an email that could not be delivered (rule 35)."""

from __future__ import annotations

from typing import Any

from services.invitation.application.tools import Tools
from services.invitation.domain.cause import Cause
from services.invitation.domain.notification_failure import NotificationFailure
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c


def record_notification_failed(
    tools: Tools, uow: UnitOfWork, cmd: c.RecordNotificationFailed, cause: Cause
) -> dict[str, Any]:
    """Records `NotificationFailed` once per email; a repeated report changes nothing."""
    existing = uow.get(NotificationFailure, NotificationFailure.create_id(cmd.message_key))
    if existing is None:
        uow.add(
            NotificationFailure.record(
                message_key=cmd.message_key,
                kind=cmd.kind,
                recipient=cmd.recipient,
                invitation_id=cmd.invitation_id,
                reason=cmd.reason,
                cause=cause,
            )
        )
    return {"message_key": str(cmd.message_key), "recorded": existing is None}
