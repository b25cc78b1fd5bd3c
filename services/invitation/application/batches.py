"""Use cases of the invitation service: each command is get -> decide -> add, in a unit of work.

`InvitationService.handle_batch` runs many commands in one unit of work and one
transaction, keeps the contract's idempotency by `command_id`, and falls back to one
transaction per command if the batch conflicts with another writer. A mass invite is
worked a slice of its rows per transaction (`mass_invites.py`): `work` runs a batch of
other commands and one slice, the batcher's unit of fairness."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError

from services.invitation.application import (
    contractors,
    invitations,
    mass_invites,
    members,
    notifications,
    temp_passwords,
)
from services.invitation.application import tenants_and_accounts as tenants
from services.invitation.application.mass_invites import MassInviteJob, SliceRecord
from services.invitation.application.passwords import PasswordFactory
from services.invitation.application.queries import QueryService
from services.invitation.application.temp_passwords import SEALED_RESULT_FIELD
from services.invitation.application.tools import Refusal, Tools
from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import (
    account_uuid,
    membership_uuid,
    notification_failure_uuid,
    tenant_id_to_uuid,
)
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership
from services.invitation.eventstore import InvitationStore, SealedPasswords, SideTables, StoredReply
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c
from shared.contract.codes import RejectionCode
from shared.secrets import (
    PageTokens,
    Sealer,
    TempPasswordHasher,
    TokenSigner,
)

log = logging.getLogger(__name__)
# Commands that load the account of their `email`.
_ACCOUNT_COMMANDS = (
    c.RecordTempPasswordDelivered,
    c.ExpireTempPassword,
    c.RecordPasswordChanged,
    c.RegisterAccount,
)


@dataclass(frozen=True)
class IncomingCommand:
    """A parsed command and who sent it: the AMQP `user_id` it was published with (the
    intake refuses a command without one), or None when run in process (tests, tools)."""

    name: str
    command: c.Command
    sender: str | None = None
    # The W3C trace context the intake consumed it under (None when tracing is off),
    # stored with its events so the relay and the notifier continue its trace.
    traceparent: str | None = None


def fingerprint(item: IncomingCommand) -> str:
    """What must match for a repeated `command_id` to get the first reply: the command,
    its body and its sender, so another sender's reuse is `command_id_reused`, never
    the first sender's reply."""
    body = item.command.model_dump(mode="json")
    signed = [item.name, body, item.sender]
    return hashlib.sha256(json.dumps(signed, sort_keys=True).encode()).hexdigest()


# The routing table: each command to its use case (get -> decide -> add). A mass invite
# is worked in slices instead (`InvitationService.work`).
USE_CASES: dict[type[c.Command], Callable[[Tools, UnitOfWork, Any, Cause], Any]] = {
    c.InviteUser: invitations.invite_user,
    c.ResendInvitation: invitations.resend_invitation,
    c.RevokeInvitation: invitations.revoke_invitation,
    c.AcceptInvitation: invitations.accept_invitation,
    c.LapseInvitation: invitations.lapse_invitation,
    c.ExpireTempPassword: temp_passwords.expire_temp_password,
    c.RecordTempPasswordDelivered: temp_passwords.record_temp_password_delivered,
    c.RetrieveTempPassword: temp_passwords.retrieve_temp_password,
    c.RecordInvitationEmailSent: invitations.record_invitation_email_sent,
    c.SetContractorExpiry: contractors.set_contractor_expiry,
    c.RemindContractorExpiry: contractors.remind_contractor_expiry,
    c.ExpireContractor: contractors.expire_contractor,
    c.RemoveMember: members.remove_member,
    c.ChangeRole: members.change_role,
    c.RecordNotificationFailed: notifications.record_notification_failed,
    c.ConfigureTenant: tenants.configure_tenant,
    c.RegisterAccount: tenants.register_account,
    c.RecordPasswordChanged: tenants.record_password_changed,
}


class InvitationService:
    """Runs commands in batches: one unit of work and one transaction per batch."""

    def __init__(
        self,
        store: InvitationStore,
        *,
        secrets_key: bytes,
        hasher: TempPasswordHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mass_invite_slice: int = 500,
    ) -> None:
        self.store = store
        self.mass_invite_slice = mass_invite_slice
        side_tables = store.recorder
        assert hasattr(side_tables, "lookup_replies"), "use the invitation recorders"
        self.side_tables: SideTables = side_tables  # type: ignore[assignment]
        self._clock = clock
        self._sealed = SealedPasswords(self.side_tables, secrets_key)
        self._tools = Tools(
            signer=TokenSigner(secrets_key),
            sealer=Sealer(secrets_key),
            passwords=PasswordFactory(hasher or TempPasswordHasher()),
        )
        read_model = getattr(store.recorder, "read_model", None)
        assert read_model is not None, "use the invitation recorders"
        self.queries = QueryService(read_model, self._tools.signer, PageTokens(secrets_key))

    def open_sealed(self, temp_password_id: UUID) -> str | None:
        """The sealed copy of a live temporary password, opened (None once destroyed)."""
        return self._sealed.open(temp_password_id)

    def close(self) -> None:
        self._tools.passwords.close()
        self.store.close()

    def handle(self, name: str, command: c.Command, sender: str | None = None) -> c.Reply:
        item = IncomingCommand(name, command, sender)
        if name in c.QUERIES:
            return self.ask(item)
        return self.handle_batch([item])[0]

    def ask(self, item: IncomingCommand) -> c.Reply:
        """A query: read from the read model, outside any batch; records nothing."""
        return self.queries.ask(item.command)

    def handle_batch(self, batch: Sequence[IncomingCommand]) -> list[c.Reply]:
        """Replies in input order. One transaction for the batch; per command on conflict.

        A mass invite among them is worked whole, in its place, a slice per transaction
        (what callers in process, the tests and tools, expect of one call)."""
        replies: list[c.Reply] = []
        others: list[IncomingCommand] = []
        for item in batch:
            if not isinstance(item.command, c.MassInvite):
                others.append(item)
                continue
            replies += self.work(others, None)[0] if others else []
            others = []
            job = self.mass_invite_job(item)
            while (finished := self.work([], job)[1]) is None:
                pass
            replies.append(finished)
        return replies + (self.work(others, None)[0] if others else [])

    def mass_invite_job(self, item: IncomingCommand) -> MassInviteJob:
        assert isinstance(item.command, c.MassInvite)
        return MassInviteJob(item.command, item.sender, lambda: fingerprint(item))

    def work(
        self,
        batch: Sequence[IncomingCommand],
        job: MassInviteJob | None,
        rows: int | None = None,
    ) -> tuple[list[c.Reply], c.Reply | None]:
        """The replies to `batch` (no mass invite in it), and one slice of `job` (`rows`
        rows, else `mass_invite_slice`): its reply once its last slice is stored, else
        None. One transaction; on conflict with another writer, one per command and one
        for the slice."""
        try:
            return self._run(batch, job, rows)
        except (IntegrityError, psycopg.IntegrityError):
            if len(batch) + (job is not None) == 1:
                # Lost a race with another writer on the same streams: run it again on
                # fresh state. Its id may have been recorded by the winner meanwhile.
                return self._run(batch, job, rows)
            log.info("batch of %d conflicted; running its commands one by one", len(batch))
            replies = [self._run([item])[0][0] for item in batch]
            return replies, None if job is None else self._run([], job, rows)[1]

    def _run(
        self,
        batch: Sequence[IncomingCommand],
        job: MassInviteJob | None = None,
        rows: int | None = None,
    ) -> tuple[list[c.Reply], c.Reply | None]:
        uow = UnitOfWork(self.store, self.side_tables)
        now = self._clock()
        ids = [str(item.command.command_id) for item in batch]
        if job is not None:
            ids += [job.command_id, job.next_key()]
        earlier = self.side_tables.lookup_replies(ids)
        self._prefetch(uow, batch)
        replies: list[c.Reply] = []
        for item in batch:
            if item.name in c.QUERIES:  # read-only, never stored: see `ask`
                replies.append(self.ask(item))
                continue
            command_id = str(item.command.command_id)
            print_ = fingerprint(item)
            first = earlier.get(command_id)
            if first is not None:
                replies.append(_replay(first, print_, command_id))
                continue
            reply = self._decide(uow, item, now)
            stored = StoredReply(command_id, print_, _kept(reply).model_dump_json())
            earlier[command_id] = stored
            uow.record_reply(stored)
            if item.traceparent is not None and reply.status == "accepted":
                uow.record_trace_context(command_id, item.traceparent)
            replies.append(reply)
        outcome = None if job is None else self._slice(uow, job, earlier, now, rows)
        uow.commit()
        self._tools.passwords.discard_prepared()
        if isinstance(outcome, SliceRecord):
            assert job is not None
            job.adopt(outcome)  # only once it is stored
            return replies, None
        return replies, outcome

    def _slice(
        self,
        uow: UnitOfWork,
        job: MassInviteJob,
        earlier: dict[str, StoredReply],
        now: datetime,
        rows: int | None,
    ) -> c.Reply | SliceRecord:
        """The next slice of `job` decided: the slice to store, or the final reply."""
        answered = mass_invites.catch_up(job, earlier, self.side_tables)
        if answered is not None:  # a repeat, a redelivery after a crash, or a reused id
            return _replay(answered, job.fingerprint, job.command_id)
        return mass_invites.decide_slice(
            self._tools, self.side_tables, uow, job, now, rows or self.mass_invite_slice
        )

    def _prefetch(self, uow: UnitOfWork, batch: Sequence[IncomingCommand]) -> None:
        """Load what a batch's commands look up in two queries, not one per lookup.

        First the streams the commands name (an invite's tenant, membership and account;
        another command's invitation, membership or account), then the ones those lead to
        (an invitation's membership and account, a membership's invitation and account).
        A guess, by the plain lower-cased email: whatever a handler then asks for and is
        not loaded yet, `uow.get` still fetches. The passwords of single invites are
        hashed at once meanwhile.
        """
        ids: list[UUID] = []
        named: list[UUID] = []
        invites = 0
        for item in batch:
            command = item.command
            if isinstance(command, c.InviteUser):
                invites += 1
                email = command.email.strip().lower()
                ids += [
                    tenant_id_to_uuid(command.tenant_id),
                    membership_uuid(command.tenant_id, email),
                    account_uuid(email),
                ]
            else:
                stream = self._named_stream(command)
                if stream is not None:
                    named.append(stream)
        if invites > 1:
            self._tools.passwords.prepare(invites)
        uow.prefetch(ids + named)
        if not named:
            return
        related: list[UUID] = []
        for stream in named:
            invitation = uow.get(Invitation, stream)
            if invitation is not None:
                related += [
                    membership_uuid(invitation.tenant_id, invitation.email),
                    invitation.account_id,
                ]
            membership = uow.get(Membership, stream)
            if membership is not None:
                related.append(account_uuid(membership.email))
                if membership.invitation_id is not None:
                    related.append(membership.invitation_id)
        uow.prefetch(related)

    def _named_stream(self, command: c.Command) -> UUID | None:
        # Emails as the lookups will normalise them (close enough for a prefetch).
        if isinstance(command, c.AcceptInvitation):
            claim = self._tools.signer.verify(command.token)
            return None if claim is None else claim.invitation_id
        if isinstance(command, (c.ResendInvitation, c.RevokeInvitation, c.RetrieveTempPassword)):
            if command.invitation_id is not None:
                return command.invitation_id
            assert command.email is not None
            return membership_uuid(command.tenant_id, command.email.strip().lower())
        if isinstance(command, (c.LapseInvitation, c.RecordInvitationEmailSent)):
            return command.invitation_id
        if isinstance(
            command,
            (
                c.SetContractorExpiry,
                c.ExpireContractor,
                c.RemindContractorExpiry,
                c.RemoveMember,
                c.ChangeRole,
            ),
        ):
            return membership_uuid(command.tenant_id, command.email.strip().lower())
        if isinstance(command, _ACCOUNT_COMMANDS):
            return account_uuid(command.email.strip().lower())
        if isinstance(command, c.RecordNotificationFailed):
            return notification_failure_uuid(command.message_key)
        return None

    def _decide(self, uow: UnitOfWork, item: IncomingCommand, now: datetime) -> c.Reply:
        command = item.command
        command_id = str(command.command_id)
        tenant_id = command.tenant_id if isinstance(command, c.TenantCommand) else None
        cause = Cause(
            actor=command.actor,
            command_id=command_id,
            at=now,
            tenant_id=tenant_id,
            sender=item.sender,
        )
        checkpoint = uow.checkpoint()
        try:
            outcome = USE_CASES[type(command)](self._tools, uow, command, cause)
        except DomainError as error:
            uow.check_unchanged_since(checkpoint)
            return c.Reply.rejected(command_id, error.code, error.message, error.details)
        if isinstance(outcome, Refusal):
            refused = outcome.error
            return c.Reply.rejected(command_id, refused.code, refused.message, refused.details)
        return c.Reply.accepted(command_id, outcome)


def _kept(reply: c.Reply) -> c.Reply:
    """The reply as stored for repeats: never a sealed password (retrieve_temp_password)."""
    if reply.result is None or reply.result.get(SEALED_RESULT_FIELD) is None:
        return reply
    return reply.model_copy(update={"result": {**reply.result, SEALED_RESULT_FIELD: None}})


def _replay(first: StoredReply, print_: str, command_id: str) -> c.Reply:
    if first.fingerprint != print_:
        return c.Reply.rejected(
            command_id,
            RejectionCode.COMMAND_ID_REUSED,
            "this command_id was already used for a different command",
        )
    return c.Reply.model_validate_json(first.reply_json)
