"""Who an email names as the person who invited (rule 31).

Never a raw service id (`service:expiry`) nor whatever else a caller put in `actor`: the
`inviter_name` the command gave (the invitation service refused it unless it is a plain
name), else the actor when it is a person's email address, else nobody, and the email
says that the organisation's administrators invited.
"""

from __future__ import annotations

import re

__all__ = ["shown_inviter"]

# An address as a person's actor is written: no spaces, no scheme or `service:` prefix.
_PERSON_EMAIL = re.compile(r"[^\s@:/<>\"']+@[^\s@:/<>\"']+\.[^\s@:/<>\"'.]{2,}")


def shown_inviter(inviter_name: str | None, invited_by: str | None) -> str | None:
    if inviter_name:
        return inviter_name
    if invited_by and len(invited_by) <= 254 and _PERSON_EMAIL.fullmatch(invited_by):
        return invited_by
    return None
