"""The walkthrough's second act: members after they joined, and mail that cannot be delivered.

Rules 34-37 as an administrator meets them: the last administrator cannot be removed; a
French administrator with an internationalised address (SMTPUTF8, IDNA) joins; a member
is promoted, then removed; an invitation bounces, and the administrators are told, in
their own languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote

from rich.console import Console

from shared.command_client import CommandClient
from shared.contract import Reply
from tests.support import EventTap, wait_for

ALICE = "alice@acme.example"
JOSE = "josé@bücher.example"
BOB = "bob@partner.example"
BOUNCE = "nobody@bounce.example"
REFUSED = {BOUNCE: "550 5.1.1 <nobody@bounce.example>: no such mailbox"}

Show = Callable[[str, Reply], Reply]
Command = Callable[..., dict[str, Any]]


def link_token(messages: list[EmailMessage], recipient: str) -> str | None:
    """The token of the invitation link in the latest invitation email to `recipient`."""
    for message in reversed(messages):
        if recipient in str(message["To"]) and "invitation" in str(message["X-Notification-Kind"]):
            body = message.get_body(("plain",))
            found = re.search(r"[?&]token=([^\s&]+)", body.get_content() if body else "")
            if found:
                return unquote(found.group(1))
    return None


async def members_and_mail(
    client: CommandClient,
    tenant: str,
    messages: list[EmailMessage],
    tap: EventTap,
    *,
    console: Console,
    show: Show,
    command: Command,
) -> None:
    console.rule("Members after they joined; mail that cannot be delivered")

    async def accept(person: str, mailbox: str) -> None:
        token = await wait_for(lambda: link_token(messages, mailbox), what=f"{person}'s email")
        show(
            f"{person} accepts with the link from the email",
            await client.send(
                "accept_invitation", command(tenant, actor=person, email=person, token=token)
            ),
        )

    show(
        "remove alice, the only administrator",
        await client.send("remove_member", command(tenant, email=ALICE)),
    )
    show(
        "invite josé@bücher.example as administrator, in French (SMTPUTF8 and IDNA)",
        await client.send(
            "invite_user", command(tenant, email=JOSE, role="administrator", locale="fr")
        ),
    )
    await accept(JOSE, "josé@xn--bcher-kva.example")
    await accept(BOB, BOB)
    show(
        "change bob's role to administrator",
        await client.send("change_role", command(tenant, email=BOB, role="administrator")),
    )
    show(
        "remove bob (alice and josé remain administrators)",
        await client.send("remove_member", command(tenant, email=BOB, reason="left the project")),
    )
    show(
        "invite nobody@bounce.example (the mail server will refuse it)",
        await client.send("invite_user", command(tenant, email=BOUNCE, role="user")),
    )
    await wait_for(lambda: tap.of_type("NotificationFailed"), what="NotificationFailed")

    def french_notice() -> EmailMessage | None:
        for message in messages:
            if "josé" in str(message["To"]) and (
                message["X-Notification-Kind"] == "admin_notification_failed"
            ):
                return message
        return None

    notice = await wait_for(french_notice, what="josé's notice of the bounce")
    console.rule("The bounce, as josé (administrator, French) was told")
    body = notice.get_body(("plain",))
    console.print(f"To: {notice['To']}\nSubject: {notice['Subject']}\n", markup=False)
    console.print(body.get_content() if body else "", markup=False)
