"""The installed `invitations` script itself: every command has --help, and it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("invitations")


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["audit"],
        ["state"],
        ["verify"],
        ["replay"],
        ["republish"],
        ["report"],
        ["temp-password"],
    ],
)
def test_every_command_has_help(command):
    result = subprocess.run(
        [SCRIPT, *command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.integration
def test_the_script_verifies_a_store_from_the_environment(store, tenant):
    store.invite(tenant, "script@example.com")

    result = subprocess.run(
        [SCRIPT, "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **store.env},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout


def test_a_missing_secrets_key_is_a_configuration_error(tmp_path):
    result = subprocess.run(
        [SCRIPT, "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
        check=False,
    )

    assert result.returncode == 2
    assert "SECRETS_KEY is required" in result.stderr
