"""French that a French reader would write: every French email, for every role and every
contractor case, read for the errors a machine can see.

- elision: `que`, `de`, `le`, `la` (and `ne`, `se`, `ce`, `je`, `me`, `te`) are never
  written out before a vowel or a mute h (`qu'utilisateur`, not `que utilisateur`), nor
  `si il` for `s'il`;
- typography: the high punctuation `:`, `;`, `!`, `?` follows a no-break space (U+00A0 or
  the narrow U+202F), never a plain space or none.

The people, addresses and organisation in the emails begin with vowels on purpose: a
template that writes "de {{ name }}" or "que {{ role }}" is caught here.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.notifier.adapters.rendering import RenderedEmail, Renderer
from services.notifier.domain.emails import Kind

KEY = "12345678-1234-5678-1234-567812345678"
PASSWORD = "Xy7#pQ9!mN2$kL4@wZ8&"
LINK = "https://vault.test/accept?token=T0KEN"
ROLES = ("user", "administrator", "contractor")
VOWELS = "aeiouàâäéèêëîïôöùûüœæ"
# Words with a mute h that these emails could hold: elided like a vowel.
MUTE_H = ("heure", "heures", "habitude", "histoire", "hôte", "honneur", "hier", "homme")
# Not a pronoun after its verb: "invitez-la à nouveau" is right.
_ELIDED = r"(?<![-\w])(que|de|le|la|ne|se|ce|je|me|te)\s+"
ELISION = re.compile(
    _ELIDED + rf"(?=[{VOWELS}]|(?:{'|'.join(MUTE_H)})\b)|\bsi\s+ils?\b", re.IGNORECASE
)
NO_BREAK = "\u00a0\u202f"
ABOUT_AN_END = {
    Kind.CONTRACTOR_EXPIRY_REMINDER,
    Kind.CONTRACTOR_ACCESS_ENDED,
    Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING,
    Kind.ADMIN_CONTRACTOR_EXPIRED,
}
HIGH_PUNCTUATION = re.compile(rf"(?<![{NO_BREAK}])[:;!?]")


def elision_errors(text: str) -> list[str]:
    return [text[max(0, m.start() - 20) : m.end() + 15] for m in ELISION.finditer(text)]


def typography_errors(text: str) -> list[str]:
    prose = text.replace(PASSWORD, "").replace(LINK, "")
    prose = re.sub(r"https?://\S+", "", prose)
    return [prose[max(0, m.start() - 20) : m.end() + 5] for m in HIGH_PUNCTUATION.finditer(prose)]


def readable(part: str) -> str:
    """An HTML part as a reader sees it: no tags, no head, entities decoded."""
    body = part.split("<body", 1)[-1].split(">", 1)[-1]
    return html.unescape(re.sub(r"<[^>]*>", "", body))


def contexts(kind: Kind) -> Iterator[dict[str, Any]]:
    """Every role and contractor case of `kind`, with vowel-initial names throughout."""
    people = [
        {"email": "anne@example.test", "display_name": None},
        {"email": "hugo@example.test", "display_name": "Élodie Martin"},
    ]
    dates = {
        "access_expires_at": "2030-03-01T12:00:00+00:00",
        "invitation_expires_at": "2030-01-14T08:05:00+00:00",
        "temp_password_valid_until": "2030-01-14T08:05:00+00:00",
        "accepted_at": "2030-01-08T10:30:00+00:00",
        "removed_at": "2030-01-08T10:30:00+00:00",
        "expired_at": "2030-03-01T12:00:05+00:00",
    }
    # An inviter named, or none to show (rule 31: never a raw service id).
    inviters = ("Inès Lefèvre", None)
    for person, role, resent, ends, offset, inviter in itertools.product(
        people, ROLES, (False, True), (True, False), (3600, 86400 + 3600), inviters
    ):
        if (ends and role != "contractor") or (kind in ABOUT_AN_END and not ends):
            continue
        base = {
            "tenant_id": "acme",
            **person,
            **dates,
            "role": role,
            "previous_role": "administrator" if role != "administrator" else "user",
            "invited_by": "ines@acme.test",
            "inviter": inviter,
            "resent": resent,
            "offset_seconds": offset,
            "invitation_id": KEY,
            "batch_id": KEY,
            "invited": 12,
            "refused": 1,
            "manual": 11,
            "reason": "550 5.1.1 mailbox unknown",
            "failed_kind": "invitation_automatic",
        }
        if not ends:
            base["access_expires_at"] = None
        if kind == Kind.ADMIN_MANUAL_PASSWORDS_PENDING:
            yield {**base, "count": 1, "temp_password_id": KEY}
            yield {**base, "count": 1, "batch_id": None, "temp_password_id": KEY}
            yield {**base, "count": 11, "email": None, "display_name": None}
        elif kind == Kind.ADMIN_NOTIFICATION_FAILED:
            for about in ("invitation", "contractor", "member"):
                yield {**base, "about": about}
        else:
            yield base


def french_emails(renderer: Renderer, kind: Kind) -> Iterator[RenderedEmail]:
    for context in contexts(kind):
        link = LINK if kind.value.startswith("invitation") else None
        password = PASSWORD if kind == Kind.INVITATION_AUTOMATIC else None
        yield renderer.render(kind, "fr", context, link=link, password=password)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer("Cloud Vault")


@pytest.mark.parametrize("kind", list(Kind))
def test_no_french_email_leaves_a_word_unelided_before_a_vowel(
    renderer: Renderer, kind: Kind
) -> None:
    for email in french_emails(renderer, kind):
        for part in (email.subject, email.text, readable(email.html)):
            assert elision_errors(part) == [], part


@pytest.mark.parametrize("kind", list(Kind))
def test_every_french_colon_and_question_mark_follows_a_no_break_space(
    renderer: Renderer, kind: Kind
) -> None:
    for email in french_emails(renderer, kind):
        for part in (email.subject, email.text, readable(email.html)):
            assert typography_errors(part) == [], part


def test_an_invitation_says_which_role_with_its_elision(renderer: Renderer) -> None:
    said = {
        role: renderer.render(
            Kind.INVITATION_LINKED,
            "fr",
            next(c for c in contexts(Kind.INVITATION_LINKED) if c["role"] == role),
            link=LINK,
        ).text
        for role in ROLES
    }
    assert "en tant qu'utilisateur" in said["user"]
    assert "en tant qu'administrateur" in said["administrator"]
    assert "en tant que prestataire" in said["contractor"]


def test_the_checks_see_the_errors_they_look_for() -> None:
    assert elision_errors("vous invite en tant que utilisateur.")
    assert elision_errors("la liste de invités")
    assert elision_errors("le accès, la heure")
    assert elision_errors("invitez-le à nouveau si il a encore besoin")
    assert not elision_errors("en tant qu'administrateur, le 1er mars, la liste, que le lien")
    assert not elision_errors("invitez-la à nouveau, faites-le aussi")
    assert typography_errors("Refus : 2")
    assert typography_errors("Refus: 2")
    assert not typography_errors("Refus\u00a0: 2\u00a0; vraiment\u202f?")
    assert not typography_errors(f"Accepter l'invitation\u00a0: {LINK}")
