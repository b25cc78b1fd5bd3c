"""`python -m services.expiry`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.expiry.bootstrap import serve
from services.expiry.settings import ExpirySettings
from shared.event_loop import run
from shared.logs import configure_logging
from shared.settings import settings_or_exit, warn_if_development_mode


def main() -> None:
    settings = settings_or_exit(ExpirySettings)
    configure_logging("expiry", settings.log_level, settings.log_format)
    warn_if_development_mode(settings)
    run(serve(settings))


if __name__ == "__main__":
    main()
