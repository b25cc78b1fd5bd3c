"""`python -m services.notifier`: runs until SIGTERM/SIGINT, then stops cleanly."""

from __future__ import annotations

from services.notifier.bootstrap import build_service
from services.notifier.settings import NotifierSettings
from shared.event_loop import run
from shared.logs import configure_logging


def main() -> None:
    settings = NotifierSettings()
    configure_logging("notifier", settings.log_level, settings.log_format)
    run(build_service(settings).run())


if __name__ == "__main__":
    main()
