"""docker-compose.yml brings up the whole stack safely (checked without a Docker engine).

No Docker engine runs on this machine, so the file is checked here the way compose
would read it: YAML with merge keys, then variable interpolation. Compose itself
(`docker compose` v2, else Debian's `docker-compose`, which scripts/setup installs)
validates it too: the last tests.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.ops.conftest import ROOT

APPLICATION_SERVICES = {"invitation", "notifier", "expiry"}
REQUIRED_SECRETS = {"SECRETS_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"}
CONTRACT_ENVIRONMENT = {"AMQP_URL", "DATABASE_URL", "SECRETS_KEY", "PUBLIC_BASE_URL", "HTTP_PORT"}
SMTP_ENVIRONMENT = {"SMTP_HOST", "SMTP_PORT", "SMTP_FROM"}

# The compose specification's service keys this file may use: a typo ("healtcheck")
# would otherwise be ignored by this test and refused only by Docker.
KNOWN_SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "environment",
    "env_file", "healthcheck", "image", "init", "labels", "logging", "networks", "ports",
    "profiles", "restart", "stop_grace_period", "stop_signal", "user", "volumes",
    "working_dir",
}  # fmt: skip

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's substitution: $$, $VAR, ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?e}, ${VAR?e}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        unset_or_empty = not current
        missing = unset_or_empty if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if missing else (current or "")
        if op in (":?", "?"):
            if missing:
                raise InterpolationError(f"{name}: {arg}")
            return current or ""
        if op in (":+", "+"):
            return "" if missing else arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def long_running(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services `docker compose up` starts (the CLI sits behind a profile)."""
    return {n: s for n, s in compose["services"].items() if not s.get("profiles")}


def filled_env(env_example: dict[str, str]) -> dict[str, str]:
    return {
        **env_example,
        "SECRETS_KEY": "a2V5",
        "POSTGRES_PASSWORD": "p",
        "RABBITMQ_PASSWORD": "r",
    }


def test_the_stack_runs_the_broker_with_its_ui_the_database_on_a_volume_mail_and_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert "management" in services["rabbitmq"]["image"]
    assert any(p.endswith(":15672") for p in services["rabbitmq"]["ports"])
    assert services["postgres"]["image"].startswith("postgres:")
    volume = services["postgres"]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "PostgreSQL keeps its data in a named volume"
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert {p.rsplit(":", 1)[1] for p in services["mailpit"]["ports"]} == {"8025", "1025"}
    assert set(services) >= APPLICATION_SERVICES


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in long_running(compose).items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), name


def test_every_dependency_is_awaited_until_it_is_healthy(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: the short form cannot wait for health"
        for dependency, how in depends_on.items():
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
            assert how == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    for name in APPLICATION_SERVICES:
        assert {"rabbitmq", "postgres"} <= set(compose["services"][name]["depends_on"]), name
    assert "mailpit" in compose["services"]["notifier"]["depends_on"]


def test_services_restart_when_they_fail(compose: dict[str, Any]) -> None:
    for name, service in long_running(compose).items():
        assert service.get("restart") in ("on-failure", "unless-stopped", "always"), name


def test_application_services_are_built_from_the_one_image_and_stop_within_their_grace(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    images = {services[n]["image"] for n in [*APPLICATION_SERVICES, "cli"]}
    assert len(images) == 1
    for name in APPLICATION_SERVICES:
        assert services[name]["build"] == "."
        grace = services[name]["stop_grace_period"]
        assert int(grace.rstrip("s")) > 10, "the contract allows a service 10 s to stop"


def test_services_are_configured_with_the_contract_environment(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    resolved = interpolate(compose, filled_env(env_example))
    for name in APPLICATION_SERVICES:
        environment = resolved["services"][name]["environment"]
        assert set(environment) >= CONTRACT_ENVIRONMENT, name
        assert environment["AMQP_URL"].startswith("amqp://invitations:r@rabbitmq:5672/")
        assert environment["DATABASE_URL"] == (
            "postgresql://invitations:p@postgres:5432/invitations"
        )
        assert "DEVELOPMENT_MODE" not in environment, "production refuses a missing key"
    notifier = resolved["services"]["notifier"]["environment"]
    assert set(notifier) >= SMTP_ENVIRONMENT
    assert notifier["SMTP_HOST"] == "mailpit"
    assert notifier["SMTP_PORT"] == "1025"


def test_health_checks_probe_the_port_the_service_serves(compose: dict[str, Any]) -> None:
    for name in APPLICATION_SERVICES:
        service = compose["services"][name]
        port = service["environment"]["HTTP_PORT"]
        assert port != "0"
        assert service["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "shared.ops_http"]
        assert any(p.endswith(f":{port}") for p in service["ports"]), name


@pytest.mark.parametrize("secret", sorted(REQUIRED_SECRETS))
def test_the_stack_refuses_to_start_without_each_secret(
    compose: dict[str, Any], env_example: dict[str, str], secret: str
) -> None:
    env = filled_env(env_example)
    interpolate(compose, env)  # complete: fine
    for absent in ({k: v for k, v in env.items() if k != secret}, {**env, secret: ""}):
        with pytest.raises(InterpolationError, match=secret):
            interpolate(compose, absent)


def test_the_env_example_leaves_the_secrets_empty_and_documents_every_variable(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m["name"] or m["bare"] for m in _VARIABLE.finditer(text) if not m["escaped"]}
    assert used - set(env_example) == set(), "variables .env.example does not mention"
    for secret in REQUIRED_SECRETS:
        assert env_example[secret] == "", f"{secret} must be chosen, never defaulted"
    with pytest.raises(InterpolationError):
        interpolate(compose, env_example)  # as copied: refused until filled in


def test_every_command_names_a_module_of_the_image(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = command[2]
            assert importlib.util.find_spec(f"{module}.__main__") is not None, (
                f"{name} runs `python -m {module}`, which does not exist"
            )
        check = service.get("healthcheck", {}).get("test", [])
        if check[1:3] == ["python", "-m"]:
            assert importlib.util.find_spec(check[3]) is not None


def test_service_definitions_use_only_known_keys(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert set(service) <= KNOWN_SERVICE_KEYS, f"{name}: {set(service) - KNOWN_SERVICE_KEYS}"


def test_ports_are_published_on_the_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} to every network"


def compose_command() -> list[str] | None:
    """`docker compose` (v2) where the plugin is installed, else Debian's `docker-compose`."""
    if shutil.which("docker") is not None:
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


needs_compose = pytest.mark.skipif(
    compose_command() is None, reason="neither docker compose nor docker-compose is installed"
)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    assert command is not None
    return subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
    )


@needs_compose
def test_docker_compose_accepts_the_file(env_example: dict[str, str]) -> None:
    result = compose_config(filled_env(env_example))
    assert result.returncode == 0, result.stderr


@needs_compose
def test_docker_compose_refuses_to_start_without_each_secret(env_example: dict[str, str]) -> None:
    for secret in sorted(REQUIRED_SECRETS):
        result = compose_config({**filled_env(env_example), secret: ""})
        assert result.returncode != 0, f"compose accepted an empty {secret}"
        assert f"set {secret} in .env" in result.stderr
