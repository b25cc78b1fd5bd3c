"""Use cases of the invitation service: each command is get -> decide -> add, in a unit of work.

`InvitationService.handle_batch` runs many commands in one unit of work and one
transaction, keeps the contract's idempotency by `command_id`, and falls back to one
transaction per command if the batch conflicts with another writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, Recording
from pydantic import TypeAdapter

from services.invitation.adapters.recorders import SideTables, StoredReply
from services.invitation.domain.account import Account
from services.invitation.domain.batch import MAX_BATCH, MassInvite
from services.invitation.domain.cause import Cause
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid, membership_uuid, tenant_id_to_uuid
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership, check_role_and_expiry
from services.invitation.domain.tenant import DEFAULT_SETTINGS, Tenant, TenantSettings
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c
from shared.contract.codes import RejectionCode
from shared.secrets import (
    Sealer,
    TempPasswordHasher,
    TokenSigner,
    generate_temp_password,
    token_hash,
)

log = logging.getLogger(__name__)
_durations = TypeAdapter(list[timedelta])
# Commands that load the account of their `email`.
_ACCOUNT_COMMANDS = (
    c.RecordTempPasswordDelivered,
    c.RetrieveTempPassword,
    c.ExpireTempPassword,
    c.RecordPasswordChanged,
    c.RegisterAccount,
)


class InvitationStore(Application[UUID]):
    """The event store of the invitation service (tables `invitations_*`)."""

    name = "Invitations"

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """`Application.save`, without its per-object runtime-Protocol checks for aggregates.

        The library asks `isinstance(obj, DomainEventProtocol)` of every object, and an
        isinstance on a typing.Protocol walks its members: ~2 s for the ~30,000 aggregates
        of a 10,000-row mass invite. Ours are all `Aggregate`s, a plain class check; the
        rest (record, snapshots, notify) is the library's own sequence.
        """
        if not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in objs:
            assert isinstance(aggregate, Aggregate)
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings


@dataclass(frozen=True)
class Refusal:
    """A rejection that still records events (a refused acceptance is audited)."""

    error: DomainError


@dataclass(frozen=True)
class IncomingCommand:
    name: str
    command: c.Command


@dataclass(frozen=True)
class _InvitePlan:
    tenant_id: str
    email: str
    role: str
    access_expires_at: datetime | None
    delivery: str
    settings: TenantSettings
    membership: Membership | None
    account: Account | None
    display_name: str | None
    locale: str | None

    @property
    def links_account(self) -> bool:
        """Rule 4: an existing account someone can sign in to is linked, not given a password."""
        return self.account is not None and self.account.can_sign_in


class PasswordFactory:
    """Temporary passwords with their slow hashes, computed on a small thread pool.

    argon2 releases the GIL, so a batch's hashes use every core. `prepare` only queues
    them: the caller goes on deciding the batch while they are computed, and `take`
    waits for the next one (a 10,000-row mass invite spends ~11 CPU seconds hashing at
    the default cost, more than everything else together).
    """

    def __init__(self, hasher: TempPasswordHasher, workers: int = 2) -> None:
        self._hasher = hasher
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._ready: deque[Future[tuple[str, str]]] = deque()

    def _make(self) -> tuple[str, str]:
        password = generate_temp_password()
        return password, self._hasher.hash(password)

    def prepare(self, count: int) -> None:
        """Have `count` passwords queued or ready."""
        self.queue(count - len(self._ready))

    def queue(self, count: int = 1) -> None:
        """Start `count` more (a mass invite asks as it learns its needs)."""
        for _ in range(count):
            self._ready.append(self._pool.submit(self._make))

    def take(self) -> tuple[str, str]:
        return self._ready.popleft().result() if self._ready else self._make()

    def discard_prepared(self) -> None:
        for future in self._ready:
            future.cancel()
        self._ready.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def fingerprint(name: str, command: c.Command) -> str:
    body = command.model_dump(mode="json")
    return hashlib.sha256(json.dumps([name, body], sort_keys=True).encode()).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def settings_json(settings: TenantSettings) -> dict[str, Any]:
    return {
        "contractor_enabled": settings.contractor_enabled,
        "temp_password_delivery": settings.temp_password_delivery,
        "invitation_ttl": _durations.dump_python([settings.invitation_ttl], mode="json")[0],
        "temp_password_ttl": _durations.dump_python([settings.temp_password_ttl], mode="json")[0],
        "expiry_reminders": _durations.dump_python(list(settings.expiry_reminders), mode="json"),
        "admin_notification_emails": list(settings.admin_notification_emails),
    }


class InvitationService:
    def __init__(
        self,
        store: InvitationStore,
        *,
        secrets_key: bytes,
        hasher: TempPasswordHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        side_tables = store.recorder
        assert hasattr(side_tables, "lookup_replies"), "use the invitation recorders"
        self.side_tables: SideTables = side_tables  # type: ignore[assignment]
        self._clock = clock
        self._sealer = Sealer(secrets_key)
        self._signer = TokenSigner(secrets_key)
        self._passwords = PasswordFactory(hasher or TempPasswordHasher())
        self._handlers: dict[type[c.Command], Callable[[UnitOfWork, Any, Cause], Any]] = {
            c.InviteUser: self._invite_user,
            c.MassInvite: self._mass_invite,
            c.ResendInvitation: self._resend_invitation,
            c.RevokeInvitation: self._revoke_invitation,
            c.AcceptInvitation: self._accept_invitation,
            c.SetContractorExpiry: self._set_contractor_expiry,
            c.ConfigureTenant: self._configure_tenant,
            c.RegisterAccount: self._register_account,
            c.RecordPasswordChanged: self._record_password_changed,
            c.LapseInvitation: self._lapse_invitation,
            c.ExpireTempPassword: self._expire_temp_password,
            c.ExpireContractor: self._expire_contractor,
            c.RemindContractorExpiry: self._remind_contractor_expiry,
            c.RecordTempPasswordDelivered: self._record_temp_password_delivered,
            c.RetrieveTempPassword: self._retrieve_temp_password,
        }

    def close(self) -> None:
        self._passwords.close()
        self.store.close()

    # -- running commands ----------------------------------------------------------------

    def handle(self, name: str, command: c.Command) -> c.Reply:
        return self.handle_batch([IncomingCommand(name, command)])[0]

    def handle_batch(self, batch: Sequence[IncomingCommand]) -> list[c.Reply]:
        """Replies in input order. One transaction for the batch; per command on conflict."""
        try:
            return self._run(batch)
        except (IntegrityError, psycopg.IntegrityError):
            if len(batch) == 1:
                # Lost a race with another writer on the same streams: run it again on
                # fresh state. Its id may have been recorded by the winner meanwhile.
                return self._run(batch)
            log.info("batch of %d conflicted; running its commands one by one", len(batch))
            return [self._run([item])[0] for item in batch]

    def _run(self, batch: Sequence[IncomingCommand]) -> list[c.Reply]:
        uow = UnitOfWork(self.store, self.side_tables)
        now = self._clock()
        ids = [str(item.command.command_id) for item in batch]
        earlier = self.side_tables.lookup_replies(ids)
        self._prefetch(uow, batch)
        replies: list[c.Reply] = []
        for item in batch:
            command_id = str(item.command.command_id)
            print_ = fingerprint(item.name, item.command)
            first = earlier.get(command_id)
            if first is not None:
                replies.append(_replay(first, print_, command_id))
                continue
            reply = self._decide(uow, item, now)
            stored = StoredReply(command_id, print_, reply.model_dump_json())
            earlier[command_id] = stored
            uow.record_reply(stored)
            replies.append(reply)
        uow.commit()
        self._passwords.discard_prepared()
        return replies

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
            self._passwords.prepare(invites)
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
            claim = self._signer.verify(command.token)
            return None if claim is None else claim.invitation_id
        if isinstance(command, (c.ResendInvitation, c.RevokeInvitation)):
            if command.invitation_id is not None:
                return command.invitation_id
            assert command.email is not None
            return membership_uuid(command.tenant_id, command.email.strip().lower())
        if isinstance(command, c.LapseInvitation):
            return command.invitation_id
        if isinstance(
            command, (c.SetContractorExpiry, c.ExpireContractor, c.RemindContractorExpiry)
        ):
            return membership_uuid(command.tenant_id, command.email.strip().lower())
        if isinstance(command, _ACCOUNT_COMMANDS):
            return account_uuid(command.email.strip().lower())
        return None

    def _decide(self, uow: UnitOfWork, item: IncomingCommand, now: datetime) -> c.Reply:
        command = item.command
        command_id = str(command.command_id)
        tenant_id = command.tenant_id if isinstance(command, c.TenantCommand) else None
        cause = Cause(actor=command.actor, command_id=command_id, at=now, tenant_id=tenant_id)
        checkpoint = uow.checkpoint()
        try:
            outcome = self._handlers[type(command)](uow, command, cause)
        except DomainError as error:
            uow.check_unchanged_since(checkpoint)
            return c.Reply.rejected(command_id, error.code, error.message, error.details)
        if isinstance(outcome, Refusal):
            refused = outcome.error
            return c.Reply.rejected(command_id, refused.code, refused.message, refused.details)
        return c.Reply.accepted(command_id, outcome)

    # -- lookups -------------------------------------------------------------------------

    def _settings(self, uow: UnitOfWork, tenant_id: str) -> TenantSettings:
        tenant = uow.get(Tenant, tenant_id_to_uuid(tenant_id))
        return DEFAULT_SETTINGS if tenant is None else tenant.settings

    def _find_invitation(
        self, uow: UnitOfWork, tenant_id: str, invitation_id: UUID | None, email: str | None
    ) -> Invitation:
        if invitation_id is None:
            assert email is not None
            membership = uow.get(Membership, membership_uuid(tenant_id, normalise_email(email)))
            invitation_id = None if membership is None else membership.invitation_id
        invitation = None if invitation_id is None else uow.get(Invitation, invitation_id)
        if invitation is None or invitation.tenant_id != tenant_id:
            raise DomainError(
                RejectionCode.INVITATION_NOT_FOUND,
                "no such invitation in this tenant",
                {"invitation_id": str(invitation_id) if invitation_id else None},
            )
        return invitation

    def _membership_of(self, uow: UnitOfWork, invitation: Invitation) -> Membership:
        membership = uow.get(Membership, membership_uuid(invitation.tenant_id, invitation.email))
        assert membership is not None, "every invitation has its membership"
        return membership

    def _account(self, uow: UnitOfWork, email: str) -> Account:
        account = uow.get(Account, account_uuid(normalise_email(email)))
        if account is None:
            raise DomainError(RejectionCode.ACCOUNT_NOT_FOUND, "no account with this email")
        return account

    # -- invite ----------------------------------------------------------------------------

    def _plan_invite(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        row: c.InviteUser | c.MassInvitee,
        delivery: str | None,
        now: datetime,
        email: str | None = None,
        settings: TenantSettings | None = None,
    ) -> _InvitePlan:
        """Every check of rules 1-6, no change: a refused invitee leaves nothing behind."""
        email = email or normalise_email(row.email)
        settings = settings or self._settings(uow, tenant_id)
        check_role_and_expiry(row.role, row.access_expires_at, settings.contractor_enabled, now)
        membership = uow.get(Membership, membership_uuid(tenant_id, email))
        if membership is not None:
            membership.check_invitable()
        return _InvitePlan(
            tenant_id=tenant_id,
            email=email,
            role=row.role,
            access_expires_at=row.access_expires_at,
            delivery=delivery or settings.temp_password_delivery,
            settings=settings,
            membership=membership,
            account=uow.get(Account, account_uuid(email)),
            display_name=row.display_name,
            locale=row.locale,
        )

    def _apply_invite(
        self, uow: UnitOfWork, plan: _InvitePlan, batch_id: UUID | None, cause: Cause
    ) -> dict[str, Any]:
        invitation_id = uuid4()
        invitation = Invitation.invite(
            invitation_id=invitation_id,
            email=plan.email,
            role=plan.role,
            access_expires_at=plan.access_expires_at,
            ttl=plan.settings.invitation_ttl,
            batch_id=batch_id,
            display_name=plan.display_name,
            locale=plan.locale,
            account_id=account_uuid(plan.email),
            token_hash=token_hash(self._signer.token(invitation_id, 1)),
            cause=cause,
        )
        uow.add(invitation)
        membership = plan.membership or Membership.start(plan.tenant_id, plan.email, cause)
        membership.offer(invitation_id, plan.role, plan.access_expires_at, cause)
        uow.add(membership)
        delivery: str | None = None
        if plan.links_account:
            invitation.record_account_linked(cause)
            outcome = "account_linked"
        else:
            # A new person, or an account an earlier invitation created whose temporary
            # password was withdrawn or expired unused: linking it would leave no way in.
            account = plan.account or Account.create_for_invitation(
                plan.email, plan.display_name, cause
            )
            self._issue_temp_password(
                uow, account, invitation_id, plan.delivery, plan.settings, cause
            )
            outcome, delivery = "temp_password_issued", plan.delivery
        return {
            "invitation_id": str(invitation_id),
            "account_id": str(account_uuid(plan.email)),
            "outcome": outcome,
            "temp_password_delivery": delivery,
            "invitation_expires_at": _iso(invitation.expires_at),
        }

    def _issue_temp_password(
        self,
        uow: UnitOfWork,
        account: Account,
        invitation_id: UUID,
        delivery: str,
        settings: TenantSettings,
        cause: Cause,
    ) -> None:
        password, password_hash = self._passwords.take()
        temp_password_id = uuid4()
        account.issue_temp_password(
            temp_password_id=temp_password_id,
            invitation_id=invitation_id,
            password_hash=password_hash,
            valid_until=cause.at + settings.temp_password_ttl,
            delivery=delivery,
            cause=cause,
        )
        uow.seal(temp_password_id, self._sealer.seal(temp_password_id, password))
        uow.add(account)

    def _invite_user(self, uow: UnitOfWork, cmd: c.InviteUser, cause: Cause) -> dict[str, Any]:
        plan = self._plan_invite(uow, cmd.tenant_id, cmd, cmd.temp_password_delivery, cause.at)
        return self._apply_invite(uow, plan, None, cause)

    def _mass_invite(self, uow: UnitOfWork, cmd: c.MassInvite, cause: Cause) -> dict[str, Any]:
        if len(cmd.invitees) > MAX_BATCH:
            raise DomainError(
                RejectionCode.BATCH_TOO_LARGE,
                f"at most {MAX_BATCH} invitees per mass invite",
                {"max": MAX_BATCH, "given": len(cmd.invitees)},
            )
        batch_id = uuid4()
        emails: list[str | DomainError] = []
        for row in cmd.invitees:
            try:
                emails.append(normalise_email(row.email))
            except DomainError as error:
                emails.append(error)
        valid = [e for e in emails if isinstance(e, str)]
        uow.prefetch(
            [tenant_id_to_uuid(cmd.tenant_id)]
            + [membership_uuid(cmd.tenant_id, e) for e in valid]
            + [account_uuid(e) for e in valid]
        )
        settings = self._settings(uow, cmd.tenant_id)  # one tenant: read its settings once
        seen: set[str] = set()
        planned: list[tuple[int, _InvitePlan]] = []
        rows: dict[int, dict[str, Any]] = {}
        for index, row in enumerate(cmd.invitees):
            email = emails[index]
            try:
                if isinstance(email, DomainError):
                    raise email
                if email in seen:
                    raise DomainError(
                        RejectionCode.DUPLICATE_IN_BATCH, "this email is earlier in the batch"
                    )
                seen.add(email)
                plan = self._plan_invite(
                    uow, cmd.tenant_id, row, cmd.temp_password_delivery, cause.at, email, settings
                )
                planned.append((index, plan))
                if not plan.links_account:
                    # Start its hash now: the rest of planning runs while it is computed.
                    self._passwords.queue()
            except DomainError as error:
                rows[index] = {
                    "index": index,
                    "email": email if isinstance(email, str) else row.email,
                    "status": "refused",
                    "error": {
                        "code": error.code.value,
                        "message": error.message,
                        "details": error.details,
                    },
                }
        for index, plan in planned:
            result = self._apply_invite(uow, plan, batch_id, cause)
            rows[index] = {
                "index": index,
                "email": plan.email,
                "status": "invited",
                "role": plan.role,
                "invitation_id": result["invitation_id"],
                "outcome": result["outcome"],
                "temp_password_delivery": result["temp_password_delivery"],
            }
        ordered = [rows[i] for i in range(len(cmd.invitees))]
        batch = MassInvite.complete(batch_id, ordered, cmd.temp_password_delivery, cause)
        uow.add(batch)
        return {
            "batch_id": str(batch_id),
            "invited": batch.invited,
            "refused": batch.refused,
            "rows": ordered,
        }

    # -- resend, revoke, accept ------------------------------------------------------------

    def _resend_invitation(
        self, uow: UnitOfWork, cmd: c.ResendInvitation, cause: Cause
    ) -> dict[str, Any]:
        invitation = self._find_invitation(uow, cmd.tenant_id, cmd.invitation_id, cmd.email)
        invitation.check_resendable(cause.at)
        membership = self._membership_of(uow, invitation)
        membership.check_reofferable(invitation.id)
        account = uow.get(Account, invitation.account_id)
        # Rule 17: an account this invitation created and that was never used gets a
        # new temporary password; one that already signed in (or was linked) does not.
        rotate = (
            account is not None
            and account.temp_invitation_id == invitation.id
            and not account.password_set
        )
        generation = invitation.link_generation + 1
        new_hash = token_hash(self._signer.token(invitation.id, generation))
        settings = self._settings(uow, cmd.tenant_id)
        invitation.resend(settings.invitation_ttl, new_hash, rotate, cause)
        uow.add(invitation)
        membership.reoffer(invitation.id, cause)
        uow.add(membership)
        if rotate:
            assert account is not None
            assert account.temp_delivery is not None
            self._withdraw_temp_password(uow, account, cause)
            self._issue_temp_password(
                uow, account, invitation.id, account.temp_delivery, settings, cause
            )
        return {
            "invitation_id": str(invitation.id),
            "invitation_expires_at": _iso(invitation.expires_at),
            "temp_password_reissued": rotate,
        }

    def _withdraw_temp_password(self, uow: UnitOfWork, account: Account, cause: Cause) -> None:
        if account.temp_password_id is None:
            return
        if account.temp_active:
            account.revoke_temp_password(cause)
            uow.add(account)
        uow.shred(account.temp_password_id)

    def _revoke_invitation(
        self, uow: UnitOfWork, cmd: c.RevokeInvitation, cause: Cause
    ) -> dict[str, Any]:
        invitation = self._find_invitation(uow, cmd.tenant_id, cmd.invitation_id, cmd.email)
        invitation.revoke(cmd.reason, cause)
        uow.add(invitation)
        membership = self._membership_of(uow, invitation)
        membership.withdraw(invitation.id, cause)
        uow.add(membership)
        account = uow.get(Account, invitation.account_id)
        withdrawn = account is not None and account.has_unused_temp_password_from == invitation.id
        if withdrawn:
            assert account is not None
            self._withdraw_temp_password(uow, account, cause)
        return {"invitation_id": str(invitation.id), "temp_password_withdrawn": withdrawn}

    def _accept_invitation(
        self, uow: UnitOfWork, cmd: c.AcceptInvitation, cause: Cause
    ) -> dict[str, Any] | Refusal:
        claim = self._signer.verify(cmd.token)
        invitation = None if claim is None else uow.get(Invitation, claim.invitation_id)
        if invitation is None or invitation.tenant_id != cmd.tenant_id:
            raise DomainError(RejectionCode.INVALID_TOKEN, "unknown invitation link")
        email = normalise_email(cmd.email)
        refusal = invitation.acceptance_refusal(token_hash(cmd.token), email, cause.at)
        if refusal is not None:
            invitation.refuse_acceptance(refusal.code.value, cause)
            uow.add(invitation)
            refusal.details.setdefault("invitation_id", str(invitation.id))
            return Refusal(refusal)
        invitation.accept(cause)
        uow.add(invitation)
        membership = self._membership_of(uow, invitation)
        membership.activate(invitation.id, cause)
        uow.add(membership)
        return {
            "invitation_id": str(invitation.id),
            "account_id": str(invitation.account_id),
            "email": invitation.email,
            "role": invitation.role,
            "access_expires_at": _iso(invitation.access_expires_at),
        }

    # -- contractors -----------------------------------------------------------------------

    def _contractor(self, uow: UnitOfWork, tenant_id: str, email: str) -> Membership:
        membership = uow.get(Membership, membership_uuid(tenant_id, normalise_email(email)))
        if membership is None:
            raise DomainError(RejectionCode.NOT_A_CONTRACTOR, "no contractor with this email")
        return membership

    def _set_contractor_expiry(
        self, uow: UnitOfWork, cmd: c.SetContractorExpiry, cause: Cause
    ) -> dict[str, Any]:
        membership = self._contractor(uow, cmd.tenant_id, cmd.email)
        membership.change_contractor_expiry(cmd.access_expires_at, cause)
        uow.add(membership)
        assert membership.invitation_id is not None
        invitation = uow.get(Invitation, membership.invitation_id)
        if invitation is not None:
            invitation.change_access_expiry(cmd.access_expires_at, cause)
            uow.add(invitation)
        return {"email": membership.email, "access_expires_at": _iso(cmd.access_expires_at)}

    def _remind_contractor_expiry(
        self, uow: UnitOfWork, cmd: c.RemindContractorExpiry, cause: Cause
    ) -> dict[str, Any]:
        membership = self._contractor(uow, cmd.tenant_id, cmd.email)
        changed = membership.remind_expiry(cmd.offset, cause)
        uow.add(membership)
        return {"email": membership.email, "reminded": changed}

    def _expire_contractor(
        self, uow: UnitOfWork, cmd: c.ExpireContractor, cause: Cause
    ) -> dict[str, Any]:
        membership = self._contractor(uow, cmd.tenant_id, cmd.email)
        pending_invitation = membership.invitation_id if membership.status == "invited" else None
        changed = membership.expire_contractor(cause)
        uow.add(membership)
        if changed and pending_invitation is not None:
            invitation = uow.get(Invitation, pending_invitation)
            if invitation is not None:
                invitation.lapse(cause, access_ended=True)
                uow.add(invitation)
        return {"email": membership.email, "expired": changed}

    # -- time-driven and account-wide ------------------------------------------------------

    def _lapse_invitation(
        self, uow: UnitOfWork, cmd: c.LapseInvitation, cause: Cause
    ) -> dict[str, Any]:
        invitation = self._find_invitation(uow, cmd.tenant_id, cmd.invitation_id, None)
        changed = invitation.lapse(cause)
        uow.add(invitation)
        if changed:
            membership = self._membership_of(uow, invitation)
            membership.withdraw(invitation.id, cause)
            uow.add(membership)
        return {"invitation_id": str(invitation.id), "lapsed": changed}

    def _expire_temp_password(
        self, uow: UnitOfWork, cmd: c.ExpireTempPassword, cause: Cause
    ) -> dict[str, Any]:
        account = self._account(uow, cmd.email)
        changed = account.expire_temp_password(cmd.temp_password_id, cause)
        uow.add(account)
        if changed:
            uow.shred(cmd.temp_password_id)
        return {"temp_password_id": str(cmd.temp_password_id), "expired": changed}

    def _record_temp_password_delivered(
        self, uow: UnitOfWork, cmd: c.RecordTempPasswordDelivered, cause: Cause
    ) -> dict[str, Any]:
        account = self._account(uow, cmd.email)
        changed = account.record_delivered(cmd.temp_password_id, cause)
        uow.add(account)
        if changed:  # never shred a manual password, or one of another account
            uow.shred(cmd.temp_password_id)
        return {"temp_password_id": str(cmd.temp_password_id), "recorded": changed}

    def _retrieve_temp_password(
        self, uow: UnitOfWork, cmd: c.RetrieveTempPassword, cause: Cause
    ) -> dict[str, Any]:
        account = self._account(uow, cmd.email)
        account.retrieve_manual(cmd.temp_password_id, cause)
        uow.add(account)
        uow.shred(cmd.temp_password_id)
        return {"temp_password_id": str(cmd.temp_password_id), "retrieved": True}

    def _configure_tenant(
        self, uow: UnitOfWork, cmd: c.ConfigureTenant, cause: Cause
    ) -> dict[str, Any]:
        changes = {
            name: value
            for name, value in cmd.model_dump(
                include={
                    "contractor_enabled",
                    "temp_password_delivery",
                    "invitation_ttl",
                    "temp_password_ttl",
                    "expiry_reminders",
                    "admin_notification_emails",
                }
            ).items()
            if value is not None
        }
        tenant = uow.get(Tenant, tenant_id_to_uuid(cmd.tenant_id))
        if tenant is None:
            tenant = Tenant.start(cmd.tenant_id, cause)
        settings = tenant.configure(changes, cause) if changes else tenant.settings
        uow.add(tenant)
        return {
            "tenant_id": cmd.tenant_id,
            "settings": settings_json(settings),
            "changed": sorted(changes),
        }

    def _register_account(
        self, uow: UnitOfWork, cmd: c.RegisterAccount, cause: Cause
    ) -> dict[str, Any]:
        email = normalise_email(cmd.email)
        account = uow.get(Account, account_uuid(email))
        created = account is None
        if account is None:
            account = Account.register(email, cmd.display_name, cause)
            uow.add(account)
        return {"account_id": str(account.id), "email": email, "created": created}

    def _record_password_changed(
        self, uow: UnitOfWork, cmd: c.RecordPasswordChanged, cause: Cause
    ) -> dict[str, Any]:
        account = self._account(uow, cmd.email)
        sealed = account.temp_password_id if account.temp_sealed else None
        account.record_password_changed(cause)
        uow.add(account)
        if sealed is not None:
            uow.shred(sealed)
        return {"account_id": str(account.id)}

    # -- reading the sealed copy (notifier, CLI) -------------------------------------------

    def open_sealed(self, temp_password_id: UUID) -> str | None:
        sealed = self.side_tables.read_sealed(temp_password_id)
        return None if sealed is None else self._sealer.unseal(temp_password_id, sealed)


def _replay(first: StoredReply, print_: str, command_id: str) -> c.Reply:
    if first.fingerprint != print_:
        return c.Reply.rejected(
            command_id,
            RejectionCode.COMMAND_ID_REUSED,
            "this command_id was already used for a different command",
        )
    return c.Reply.model_validate_json(first.reply_json)
