"""Who may send what (rules 29 and 30), decided before a command reaches the batcher.

The sender of a command is its AMQP `user_id`: RabbitMQ refuses a message whose
`user_id` is not the login of the connection that publishes it, so it is proof.

    no sender                              -> unauthenticated
    an internal command (AUDIENCE)         -> only from INTERNAL_SENDERS, else forbidden
    a public command, without a policy     -> any sender, any tenant
    a public command, with SENDER_POLICY   -> the sender's entry must list the command
                                              and, for a tenant's command, a pattern
                                              matching its tenant_id; else forbidden

A refusal here records nothing: no event, no stored reply, so the `command_id` stays
free and nothing of another sender's replies is ever looked up for it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.invitation.application.batches import IncomingCommand
from services.invitation.domain.errors import DomainError
from shared.contract import AUDIENCE, Audience, Reply, TenantCommand
from shared.contract.codes import RejectionCode

__all__ = ["ANY_COMMAND", "SenderGate", "SenderPolicy", "SenderRule"]

# In a policy's `commands`: every public command.
ANY_COMMAND = "*"


@dataclass(frozen=True)
class SenderRule:
    """One sender's entry in SENDER_POLICY, with where it is written (for refusals)."""

    sender: str
    commands: frozenset[str]
    tenants: tuple[str, ...]
    line: int
    commands_line: int
    tenants_line: int

    def allows_command(self, name: str) -> bool:
        return ANY_COMMAND in self.commands or name in self.commands

    def allows_tenant(self, tenant_id: str) -> bool:
        return any(fnmatch.fnmatchcase(tenant_id, pattern) for pattern in self.tenants)


@dataclass(frozen=True)
class SenderPolicy:
    """SENDER_POLICY as read at start: per sender, the public commands and tenants.

    `source` is the file it was read from (for the operator; refusals say only
    "SENDER_POLICY line N", so no path reaches a sender)."""

    source: str
    rules: Mapping[str, SenderRule]


class SenderGate:
    def __init__(self, internal_senders: Iterable[str], policy: SenderPolicy | None = None):
        self.internal_senders = frozenset(internal_senders)
        self.policy = policy

    def refusal(self, item: IncomingCommand) -> Reply | None:
        """The reply refusing `item`, or None when it may go on to the batcher."""
        try:
            self.check(item)
        except DomainError as error:
            command_id = str(item.command.command_id)
            return Reply.rejected(command_id, error.code, error.message, error.details)
        return None

    def check(self, item: IncomingCommand) -> None:
        """Raise `DomainError` (`unauthenticated` or `forbidden`) unless `item` may run."""
        sender, name = item.sender, item.name
        tenant_id = item.command.tenant_id if isinstance(item.command, TenantCommand) else None
        if not sender:
            raise DomainError(
                RejectionCode.UNAUTHENTICATED,
                "a command must carry the AMQP user_id property: the broker user it is "
                "published as",
                {"command": name},
            )

        def forbidden(rule: str, why: str, line: int | None = None) -> DomainError:
            details: dict[str, Any] = {
                "sender": sender,
                "command": name,
                "tenant_id": tenant_id,
                "rule": rule,
            }
            if line is not None:
                details["policy_line"] = line
            return DomainError(RejectionCode.FORBIDDEN, why, details)

        if AUDIENCE[name] is Audience.INTERNAL:
            if sender in self.internal_senders:
                return  # the services' own commands are not subject to the policy
            raise forbidden(
                "internal_command",
                f"{name} is internal: it is accepted only from the services' own broker "
                "users (INTERNAL_SENDERS)",
            )
        if self.policy is None:
            return
        rule = self.policy.rules.get(sender)
        if rule is None:
            raise forbidden("sender_not_in_policy", f"SENDER_POLICY has no entry for {sender}")
        if not rule.allows_command(name):
            raise forbidden(
                "command_not_allowed",
                f"SENDER_POLICY line {rule.commands_line}: {sender} may not send {name}",
                rule.commands_line,
            )
        if tenant_id is not None and not rule.allows_tenant(tenant_id):
            raise forbidden(
                "tenant_not_allowed",
                f"SENDER_POLICY line {rule.tenants_line}: {sender} may not act on "
                f"tenant {tenant_id}",
                rule.tenants_line,
            )
