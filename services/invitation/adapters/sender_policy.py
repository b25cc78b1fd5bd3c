"""SENDER_POLICY: the file that says what each sender may send (rule 30), read at start.

    # What each broker user may send. A sender not listed may send no public command.
    senders:
      billing-backend:               # a broker user: the AMQP user_id of its commands
        commands: [invite_user, mass_invite, resend_invitation, revoke_invitation]
        tenants: ["acme-*", globex]  # patterns: * any run of characters, ? one
      login-frontend:
        commands: [accept_invitation, register_account, record_password_changed]
        tenants: ["*"]
      operator-console:
        commands: ["*"]              # every public command
        tenants: ["*"]

YAML, read as PyYAML's node tree (`yaml.compose`) rather than loaded into Python values:
every node keeps its line, so any problem, a syntax error or a command that does not
exist, is reported with the line that holds it; values are taken as the text written,
so YAML's implicit types (`no` read as false) never change a name; and a sender listed
twice is an error instead of the last entry silently winning. (TOML's parser reports
lines only for syntax errors, and JSON allows no comments.)

Refused at start: an unknown or internal command (internal commands are for
INTERNAL_SENDERS only), a tenant pattern with characters no tenant_id has, a sender
allowed a tenant's command without any tenant, unknown keys. `register_account` and
`record_password_changed` carry no tenant_id and are matched on the command alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from services.invitation.application.senders import ANY_COMMAND, SenderPolicy, SenderRule
from shared.contract import COMMANDS, INTERNAL_COMMANDS, TenantCommand

__all__ = ["SenderPolicyError", "load_sender_policy", "parse_sender_policy"]

_TENANT_PATTERN = re.compile(r"^[a-z0-9_\-*?]{1,64}$")
_TENANT_COMMANDS = frozenset(n for n, m in COMMANDS.items() if issubclass(m, TenantCommand))


class SenderPolicyError(ValueError):
    """The policy file cannot be read or is not a valid policy; the message names the
    file and, where there is one, the line."""


def load_sender_policy(path: str) -> SenderPolicy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SenderPolicyError(f"SENDER_POLICY {path}: cannot read it: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SenderPolicyError(f"SENDER_POLICY {path}: not UTF-8 text") from None
    return parse_sender_policy(text, path)


def parse_sender_policy(text: str, source: str) -> SenderPolicy:
    return _Parser(source).policy(text)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: Node | None, problem: str) -> SenderPolicyError:
        where = f"SENDER_POLICY {self.source}"
        if node is not None:
            where += f" line {node.start_mark.line + 1}"
        return SenderPolicyError(f"{where}: {problem}")

    def policy(self, text: str) -> SenderPolicy:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as error:
            raise self._syntax_error(error) from None
        except yaml.YAMLError as error:
            raise self.error(None, f"not YAML: {error}") from None
        if root is None:
            raise self.error(None, "the file is empty: it needs a `senders:` mapping")
        fields = self.mapping(root, "the file", required={"senders"}, allowed={"senders"})
        rules: dict[str, SenderRule] = {}
        for key, entry in self.pairs(fields["senders"], "senders"):
            sender = self.text(key, "a sender")
            if sender in rules:
                raise self.error(
                    key, f"sender {sender} is listed twice (first at line {rules[sender].line})"
                )
            rules[sender] = self.rule(sender, key, entry)
        return SenderPolicy(self.source, rules)

    def rule(self, sender: str, key: Node, entry: Node) -> SenderRule:
        fields = self.mapping(
            entry,
            f"sender {sender}",
            required={"commands"},
            allowed={"commands", "tenants"},
            at=key,
        )
        commands = self.commands(fields["commands"])
        tenants_node = fields.get("tenants")
        tenants = () if tenants_node is None else self.tenants(tenants_node)
        needs_tenants = sorted(_TENANT_COMMANDS & commands) or (
            ["every tenant command"] if ANY_COMMAND in commands else []
        )
        if needs_tenants and not tenants:
            raise self.error(
                tenants_node or key,
                f"sender {sender} may send {', '.join(needs_tenants)} but no tenant is "
                'listed: add tenants (patterns, e.g. ["acme-*"], or ["*"] for all)',
            )
        return SenderRule(
            sender=sender,
            commands=frozenset(commands),
            tenants=tenants,
            line=key.start_mark.line + 1,
            commands_line=fields["commands"].start_mark.line + 1,
            tenants_line=(tenants_node or key).start_mark.line + 1,
        )

    def commands(self, node: Node) -> frozenset[str]:
        names = set()
        for item in self.sequence(node, "commands"):
            name = self.text(item, "a command")
            if name in INTERNAL_COMMANDS:
                raise self.error(
                    item,
                    f"{name} is internal: only INTERNAL_SENDERS send it, whatever the "
                    "policy says; remove it here",
                )
            if name != ANY_COMMAND and name not in COMMANDS:
                raise self.error(item, f"{name} is not a command of the contract")
            names.add(name)
        return frozenset(names)

    def tenants(self, node: Node) -> tuple[str, ...]:
        patterns = []
        for item in self.sequence(node, "tenants"):
            pattern = self.text(item, "a tenant pattern")
            if not _TENANT_PATTERN.match(pattern):
                raise self.error(
                    item,
                    f"tenant pattern {pattern!r} can match no tenant_id (1-64 of a-z 0-9 - _, "
                    "with * and ? as wildcards)",
                )
            patterns.append(pattern)
        return tuple(patterns)

    # -- nodes ---------------------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        what: str,
        *,
        required: set[str],
        allowed: set[str],
        at: Node | None = None,
    ) -> dict[str, Node]:
        """`node`'s keys and values; a missing key is reported at `at` (its name)."""
        fields: dict[str, Node] = {}
        for key, value in self.pairs(node, what):
            name = self.text(key, "a key")
            if name not in allowed:
                raise self.error(key, f"unknown key {name!r} in {what} (known: {sorted(allowed)})")
            if name in fields:
                raise self.error(key, f"{name} is given twice in {what}")
            fields[name] = value
        missing = sorted(required - fields.keys())
        if missing:
            raise self.error(at or node, f"{what} needs {', '.join(missing)}")
        return fields

    def pairs(self, node: Node, what: str) -> list[tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what} must be a mapping (`name: value` lines, or {{}})")
        return list(node.value)

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, f"{what} must be a list, e.g. [a, b]")
        return list(node.value)

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or not node.value.strip():
            raise self.error(node, f"{what} must be a non-empty name")
        return str(node.value).strip()

    def _syntax_error(self, error: yaml.MarkedYAMLError) -> SenderPolicyError:
        mark = error.problem_mark or error.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = error.problem or "not valid YAML"
        started = error.context_mark
        if error.context and started is not None and mark is not None and started.line != mark.line:
            problem += f" ({error.context} at line {started.line + 1})"
        hint = ""
        if "alias" in f"{error.context} {error.problem}":
            hint = ' (a value that starts with * must be quoted: "*", "*-test")'
        return SenderPolicyError(f"SENDER_POLICY {self.source}{line}: {problem}{hint}")
