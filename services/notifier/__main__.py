"""`python -m services.notifier`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.notifier.bootstrap import build_service
from services.notifier.settings import NotifierSettings
from shared.logs import configure_logging
from shared.service import serve
from shared.settings import settings_or_exit, warn_if_development_mode


def main() -> None:
    settings = settings_or_exit(NotifierSettings)
    configure_logging("notifier", settings.log_level, settings.log_format)
    warn_if_development_mode(settings)
    serve(build_service(settings))


if __name__ == "__main__":
    main()
