"""The project as a package: a wheel installed (not editable) in a fresh venv runs.

The wheel is built from the checkout, installed with the locked dependencies into a new
virtualenv, and used from a folder outside the checkout, so nothing is found by accident
in the source tree.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.ops_http import probe
from tests.notifier.test_rendering import CONTEXTS
from tests.ops.conftest import ROOT, free_port
from tests.support import temporary_schema, temporary_vhost, wait_for

pytestmark = pytest.mark.slow

RENDER_EVERY_KIND = """
import json, sys
import services.notifier
from services.notifier.adapters.rendering import Renderer
from services.notifier.domain.emails import SUPPORTED_LOCALES, Kind

contexts = json.loads(sys.stdin.read())
renderer = Renderer("Cloud Vault")
rendered = []
for kind in Kind:
    for locale in SUPPORTED_LOCALES:
        email = renderer.render(
            kind, locale, contexts[kind.value], link="https://x.test/accept?token=t", password="P"
        )
        assert email.subject and email.text and email.html, (kind, locale)
        rendered.append(f"{kind.value}/{locale}")
print(json.dumps({"package": services.notifier.__file__, "rendered": rendered}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # From a copy of what the Dockerfile copies: a build leaves build/ behind, and a
    # stale build/ in the checkout could carry deleted modules into the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("services", "shared"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("invitations-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the locked runtime dependencies and the wheel, not editable.

    Made and filled by uv (a dev dependency, next to this interpreter), which checks the
    same hashes as pip but fetches and installs in parallel from its cache: seconds where
    `python -m venv` and pip took most of a minute. What is tested is the wheel over the
    lock, not the installer (the Dockerfile's pip reads the same lock)."""
    root = tmp_path_factory.mktemp("venv")
    uv = Path(sys.executable).parent / "uv"
    run = functools.partial(subprocess.run, check=True, timeout=600)
    run([uv, "venv", "-q", "--python", sys.executable, root])
    install = [uv, "pip", "install", "-q", "--python", root / "bin" / "python"]
    run([*install, "--require-hashes", "-r", ROOT / "requirements.lock"])
    run([*install, "--no-deps", wheel])
    return root


def test_the_wheel_installs_the_two_packages_and_the_email_templates(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} == {
        "services",
        "shared",
        wheel.name.removesuffix("-py3-none-any.whl") + ".dist-info",
    }
    templates = [n for n in names if n.startswith("services/notifier/templates/")]
    assert "services/notifier/templates/_layout.html" in templates
    assert "services/notifier/templates/fr/invitation_manual.j2" in templates


def test_the_installed_notifier_renders_every_email_in_every_language(
    venv: Path, tmp_path: Path
) -> None:
    contexts = json.dumps(
        {kind.value: {"tenant_id": "acme", **context} for kind, context in CONTEXTS.items()}
    )
    run = subprocess.run(
        [venv / "bin" / "python", "-c", RENDER_EVERY_KIND],
        input=contexts,
        cwd=tmp_path,  # outside the checkout: only the installed package can be imported
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    assert outcome["package"].startswith(str(venv))
    assert len(outcome["rendered"]) == 2 * len(CONTEXTS)


def test_the_installed_console_script_answers(venv: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [venv / "bin" / "invitations", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "audit" in run.stdout


@pytest.fixture
def stack() -> Iterator[tuple[str, str]]:
    with temporary_schema() as database_url, temporary_vhost() as amqp_url:
        yield database_url, amqp_url


@pytest.mark.integration
@pytest.mark.parametrize("service", ["invitation", "notifier", "expiry"])
async def test_each_installed_service_starts_and_becomes_ready(
    venv: Path, tmp_path: Path, stack: tuple[str, str], service: str
) -> None:
    database_url, amqp_url = stack
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "DEVELOPMENT_MODE": "true",
        "HTTP_PORT": str(port),
    }
    with (tmp_path / "service.log").open("wb") as log:
        process = subprocess.Popen(
            [venv / "bin" / "python", "-m", f"services.{service}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def ready() -> bool:
            assert process.poll() is None, (tmp_path / "service.log").read_text()
            return probe("/readyz", port=port, timeout=1.0)

        await wait_for(ready, timeout=60, what=f"the installed {service} to be ready")
    finally:
        process.terminate()
        process.wait(15)


def _pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", path.read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))]
)
def test_the_lock_file_holds_pyprojects_own_pins(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    locked = _pins(ROOT / lock)
    regenerate = f"regenerate {lock}: see README, Dependencies"
    for requirement in wanted:
        name, version = re.sub(r"\[.*\]", "", requirement).split("==")
        assert locked.get(re.sub(r"[-_.]+", "-", name).lower()) == version, (
            f"{requirement}: {regenerate}"
        )
