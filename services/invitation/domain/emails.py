"""Email addresses (rules 1 and 37): judged on their syntax alone, then normalised.

Rule 37 accepts every address the standards let one write: RFC 5321/5322, with RFC 6531
for non-ASCII local parts and IDNA 2008 (UTS #46 mapping) for internationalised domains,
including the special-use domains (`example.test`, `.local`, `.invalid`) that other
systems' test tenants use. Whether mail reaches an address is the mail server's to say;
the notifier reports what it says (`NotificationFailed`, rule 35).

The syntax is judged by email-validator (local part, quoting, domain labels and their
lengths, unsafe Unicode), with every check that is not syntax turned off:
`check_deliverability=False` (no DNS: the domain does no I/O), `globally_deliverable=False`
(a dotless or private domain is well-formed), `test_environment=True` (admits `test`),
quoted local parts and address literals allowed. One refusal is left that no option turns
off: its `SPECIAL_USE_DOMAIN_NAMES` (`local`, `invalid`, `localhost`, `onion`, `arpa`), a
policy of that library and not a rule of syntax. Its documented remedy, editing that
module-wide list, would change every other caller in the process, so such a domain is
judged instead with that name replaced by `test`: a name of the same kind (one LDH label,
no longer than the one it replaces) that the options admit; the lengths are checked on
the real name.

Normalisation (rule 1): trimmed, Unicode NFC (`é` composed or decomposed is one person),
the domain as IDNA maps it (its Unicode form: `xn--bcher-kva.example` is `bücher.example`),
then lower-cased: `Bob@Example.COM` is `bob@example.com`. NFC, not NFKC: look-alikes are
other addresses and stay apart, whether a compatibility form (the ligature U+FB01 is not
`fi`) or another script's letter (a Cyrillic U+0430 is not a Latin `a`).
"""

from __future__ import annotations

import unicodedata

import email_validator
from email_validator import EmailNotValidError, validate_email

from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode

_ADMITTED_STAND_IN = "test"
# What email-validator checks, checked here on the real name when it judges a stand-in.
_MAX_DOMAIN_OCTETS = 253  # RFC 1035
_MAX_ADDRESS_OCTETS = 254  # RFC 5321's path, less its angle brackets


def normalise_email(raw: str) -> str:
    candidate = unicodedata.normalize("NFC", raw.strip())
    local, at, domain = candidate.rpartition("@")
    special = _special_use_suffix(domain) if at else None
    judged = candidate if special is None else f"{local}@{domain[: -len(special)]}test"
    try:
        if special is not None and (
            len(domain.encode()) > _MAX_DOMAIN_OCTETS
            or len(candidate.encode()) > _MAX_ADDRESS_OCTETS
        ):
            raise EmailNotValidError("The email address is too long.")
        validated = validate_email(
            judged,
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
            allow_quoted_local=True,
            allow_domain_literal=True,
        )
    except EmailNotValidError as error:
        raise DomainError(
            RejectionCode.INVALID_EMAIL, f"not a valid email address: {error}"
        ) from None
    normal_domain = validated.domain
    if special is not None:
        normal_domain = normal_domain[: -len(_ADMITTED_STAND_IN)] + special
    normalised = f"{validated.local_part}@{normal_domain}".lower()
    # Lower-casing can decompose a character (`İ`): compose again.
    return unicodedata.normalize("NFC", normalised)


def _special_use_suffix(domain: str) -> str | None:
    """The special-use name `domain` ends with, if email-validator would refuse it."""
    name = domain.lower()
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if special == _ADMITTED_STAND_IN or len(special) < len(_ADMITTED_STAND_IN):
            continue
        if name == special or name.endswith(f".{special}"):
            return special
    return None
