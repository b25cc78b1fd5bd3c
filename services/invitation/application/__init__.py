"""Use cases of the invitation service.

- `batches.py`: batching and idempotency: many commands in one unit of work and one
  transaction, the first reply to each `command_id` kept with its events, and a
  fall-back to one transaction per command when a batch conflicts with another writer;
- one module per thing the use cases act on: `invitations.py`, `temp_passwords.py`,
  `contractors.py`, `members.py`, `notifications.py`, `tenants_and_accounts.py`; each
  use case is get -> decide -> add;
- `lookups.py`, `passwords.py`, `tools.py`: what they share.
"""

from services.invitation.application.batches import IncomingCommand, InvitationService

__all__ = ["IncomingCommand", "InvitationService"]
