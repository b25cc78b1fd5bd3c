"""deploy/make_secrets.py: every secret the stack reads, as files, kept across runs."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from deploy import make_secrets
from shared.settings import decode_secrets_key, secrets_key_weakness
from tests.ops.conftest import ROOT


def run(folder: Path) -> subprocess.CompletedProcess[str]:
    # As a deployer runs it: the system's python3, outside the project's virtualenv.
    return subprocess.run(
        ["python3", str(ROOT / "deploy" / "make_secrets.py"), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_it_makes_a_strong_key_and_each_parts_urls_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    run(folder)

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        # Readable by the containers' own users once mounted; the folder keeps others out.
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
        assert not path.name.startswith("."), "a draft was left behind"
    key = decode_secrets_key((folder / "secrets_key").read_text())
    assert secrets_key_weakness(key) is None
    for role in make_secrets.POSTGRES_ROLES:
        url = urlsplit((folder / f"{role}_database_url").read_text().strip())
        assert (url.username, url.hostname, url.port, url.path) == (
            role,
            "postgres",
            5432,
            "/invitations",
        )
        assert url.password == (folder / f"postgres_{role}_password").read_text().strip()
    for user in make_secrets.AMQP_USERS:
        url = urlsplit((folder / f"{user}_amqp_url").read_text().strip())
        assert (url.username, url.hostname, url.port, url.path) == (user, "rabbitmq", 5672, "/")
        assert url.password == (folder / f"rabbitmq_{user}_password").read_text().strip()


def test_every_password_is_different(tmp_path: Path) -> None:
    run(tmp_path)

    passwords = [p.read_text() for p in tmp_path.glob("*_password")]
    assert len(passwords) == 1 + len(make_secrets.POSTGRES_ROLES) + 6
    assert len(set(passwords)) == len(passwords)


def test_the_broker_gets_a_hash_of_each_users_password_and_the_repositorys_permissions(
    tmp_path: Path,
) -> None:
    run(tmp_path)

    loaded = json.loads((tmp_path / "rabbitmq_definitions.json").read_text())
    committed = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    assert loaded["permissions"] == committed["permissions"]
    assert loaded["topic_permissions"] == committed["topic_permissions"]
    for user in loaded["users"]:
        password = (tmp_path / f"rabbitmq_{user['name']}_password").read_text().strip()
        assert password not in json.dumps(user)
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        assert hashlib.sha256(salt + password.encode()).digest() == digest
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"


def test_running_it_again_keeps_every_password_and_the_key(tmp_path: Path) -> None:
    run(tmp_path)
    before = contents(tmp_path)

    run(tmp_path)
    after = contents(tmp_path)

    assert before.keys() == after.keys()
    for name, value in before.items():
        if name != "rabbitmq_definitions.json":  # fresh salts, same passwords
            assert after[name] == value, name


def test_a_deleted_password_is_made_anew_and_reaches_its_url(tmp_path: Path) -> None:
    run(tmp_path)
    old = (tmp_path / "postgres_notifier_password").read_text()
    (tmp_path / "postgres_notifier_password").unlink()

    run(tmp_path)

    new = (tmp_path / "postgres_notifier_password").read_text()
    assert new != old
    assert new.strip() in (tmp_path / "notifier_database_url").read_text()


def test_it_needs_nothing_but_the_standard_library() -> None:
    imported = subprocess.run(
        [
            sys.executable,
            "-I",  # isolated: neither the project nor its virtualenv's site-packages
            "-S",
            "-c",
            "import sys; sys.path.insert(0, 'deploy'); import make_secrets; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] not in "
            "sys.stdlib_module_names and m not in ('make_secrets', '__main__')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "[]"
