"""The Dockerfile builds one small, non-root image whose entry points all exist.

These checks need no Docker engine (test_image_runs.py builds and runs the image where
one answers): the Dockerfile is read as Docker reads it (continuation
lines joined, stages split at FROM), and the one script it runs to list dependencies
is run here against the real pyproject.toml.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
import shlex
import tomllib
from dataclasses import dataclass, field

import pytest

from tests.ops.conftest import ROOT


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def read_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m[1]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return global_args, stages


def dockerignored(path: str) -> bool:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_image_is_multi_stage_on_python_3_11_slim() -> None:
    _, stages = read_dockerfile()
    assert len(stages) >= 2
    for stage in stages:
        assert stage.base.startswith("python:3.11-slim"), stage.base
    assert any(a.startswith("--from=") for a in stages[-1].args("COPY"))


def test_the_image_runs_as_an_unprivileged_user() -> None:
    _, stages = read_dockerfile()
    users = stages[-1].args("USER")
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_final_stage_installs_nothing_itself() -> None:
    _, stages = read_dockerfile()
    for command in stages[-1].args("RUN"):
        assert "pip install" not in command and "apt-get" not in command, command


def test_dependencies_are_installed_from_the_lock_file_with_hashes() -> None:
    dependencies = pyproject()["project"]["dependencies"]  # type: ignore[index]
    for requirement in dependencies:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[0-9][A-Za-z0-9.]*", requirement), requirement
    _, stages = read_dockerfile()
    runs = " && ".join(stages[0].args("RUN"))
    assert "pip install --require-hashes -r requirements.lock" in runs
    assert re.search(r"pip install --no-deps --no-build-isolation \.(\s|$)", runs)
    for command in re.findall(r"pip install ([^&]+)", runs):
        for word in shlex.split(command):
            if not word.startswith("-") and word not in (".", "requirements.lock"):
                assert "==" in word, f"unpinned install in the Dockerfile: {word}"


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    _, stages = read_dockerfile()
    for stage in stages:
        for copy in stage.args("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not dockerignored(source.rstrip("/")), f"{source} is in .dockerignore"


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    for path in (".env", "secrets", "secrets/secrets_key", ".venv", ".git", "var", "tests"):
        assert dockerignored(path), path


def image_modules() -> list[str]:
    """Every `python -m` target of the image and of docker-compose.yml."""
    _, stages = read_dockerfile()
    texts = [*stages[-1].args("CMD"), *stages[-1].args("HEALTHCHECK")]
    texts.append((ROOT / "docker-compose.yml").read_text())
    modules = set()
    for text in texts:
        modules.update(re.findall(r'"-m",\s*"([\w.]+)"', text))
    return sorted(modules)


@pytest.mark.parametrize("module", image_modules())
def test_each_module_the_image_runs_is_importable(module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    if spec.submodule_search_locations is not None:  # a package: `-m` runs its __main__
        importlib.import_module(f"{module}.__main__")
    else:
        importlib.import_module(module)


@pytest.mark.parametrize("script", sorted(pyproject()["project"]["scripts"]))  # type: ignore[index]
def test_each_console_script_resolves_to_a_function(script: str) -> None:
    target = pyproject()["project"]["scripts"][script]  # type: ignore[index]
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
