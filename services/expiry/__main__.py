"""`python -m services.expiry`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.expiry.bootstrap import build_service
from services.expiry.settings import ExpirySettings
from shared.event_loop import run
from shared.logs import configure_logging


def main() -> None:
    settings = ExpirySettings()
    configure_logging("expiry", settings.log_level, settings.log_format)
    run(build_service(settings).run())


if __name__ == "__main__":
    main()
