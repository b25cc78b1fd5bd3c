"""Names that callers supply and invitees read in emails (rule 31).

A display name or an inviter's name is shown in an email as written, so it is where a
caller could put a phishing line ("Your account is locked. Verify now at
https://evil.example/login"). Refused `invalid_name` when it holds:

- a URL: a scheme (`https://`, `javascript://`), `www.`, or a bare domain-looking token
  (`evil.example`, `evil.example/login`): a dot between letters followed by a top-level
  label of two or more letters. "Dr.Smith" is refused too; "Dr. Smith" is not;
- an e-mail address (anything around an `@`);
- a control character, a line or paragraph separator, or a bidirectional override
  (which can make the text read differently from what it holds);
- more than `MAX_NAME_LENGTH` characters.

Fullwidth and ideographic dots count as dots, invisible format characters (zero-width
spaces, joiners) are ignored, and the text is checked in NFKC form, so look-alike
characters do not get a link past the check.
"""

from __future__ import annotations

import re
import unicodedata

from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode

__all__ = ["MAX_NAME_LENGTH", "check_name", "name_problem"]

MAX_NAME_LENGTH = 100

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_WWW = re.compile(r"(?<![^\W_])www\.", re.IGNORECASE)
# A bare domain: labels of letters, digits and hyphens joined by dots, the last one of
# two or more letters and not followed by a letter or digit (`evil.example`,
# `evil.example/login`, `EVIL.EXAMPLE`, and also `Dr.Smith`). The text is at most
# MAX_NAME_LENGTH long when it is searched, so backtracking stays small.
_DOMAIN = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![^\W_])")
_IP_ADDRESS = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d])")
_EMAIL = re.compile(r"[^\s@]@[^\s@]")
# What IDNA reads as a dot besides the full stop.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# Bidirectional embeddings, overrides and isolates.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def name_problem(value: str) -> str | None:
    """Why `value` may not be shown to an invitee, or None when it may."""
    if len(value) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    text = unicodedata.normalize("NFKC", value).translate(_DOTS)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI for c in text):
        return "holds a control character"
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    if _EMAIL.search(text):
        return "holds an e-mail address"
    if any(p.search(text) for p in (_SCHEME, _WWW, _DOMAIN, _IP_ADDRESS)):
        return "holds a web address"
    return None


def check_name(field: str, value: str | None) -> None:
    """Refuse `value` for `field` with `invalid_name` (None is no name, and fine)."""
    if value is None:
        return
    problem = name_problem(value)
    if problem is not None:
        # The value itself is not echoed: it is what was refused, and may be long.
        raise DomainError(
            RejectionCode.INVALID_NAME,
            f"{field} {problem}: names shown in emails carry no links, addresses or "
            f"control characters, and at most {MAX_NAME_LENGTH} characters",
            {"field": field, "reason": problem},
        )
