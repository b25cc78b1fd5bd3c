"""`python -m services.notifier`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.notifier.bootstrap import build_service
from services.notifier.settings import NotifierSettings
from shared.logs import configure_logging
from shared.service import serve


def main() -> None:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level, settings.log_format)
    serve(build_service(settings))


if __name__ == "__main__":
    main()
