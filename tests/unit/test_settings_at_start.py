"""A service started with a bad setting says which one on stderr, and nothing secret."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_notifier_started_with_a_malformed_key_names_it_and_prints_no_secret() -> None:
    key = base64.b64encode(os.urandom(31)).decode()  # one byte short of a key
    smtp_password = "smtp-" + secrets.token_hex(12)
    database_password = "db-" + secrets.token_hex(12)
    amqp_password = "amqp-" + secrets.token_hex(12)

    result = subprocess.run(
        [sys.executable, "-m", "services.notifier"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "SECRETS_KEY": key,
            "SMTP_PASSWORD": smtp_password,
            "DATABASE_URL": f"postgresql://notifier:{database_password}@127.0.0.1:1/none",
            "AMQP_URL": f"amqp://notifier:{amqp_password}@127.0.0.1:1/",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == (
        "configuration error: SECRETS_KEY must be base64 of exactly 32 random bytes\n"
    )
    printed = result.stdout + result.stderr
    for secret in (smtp_password, database_password, amqp_password):
        assert secret not in printed
    assert not any(key[i : i + 4] in printed for i in range(len(key) - 3))
