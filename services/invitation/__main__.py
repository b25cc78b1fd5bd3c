"""`python -m services.invitation`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.invitation.bootstrap import build_service
from services.invitation.settings import InvitationSettings
from shared.logs import configure_logging
from shared.service import serve
from shared.settings import settings_or_exit, warn_if_development_mode


def main() -> None:
    settings = settings_or_exit(InvitationSettings)
    configure_logging("invitation", settings.log_level, settings.log_format)
    warn_if_development_mode(settings)
    serve(build_service(settings))


if __name__ == "__main__":
    main()
