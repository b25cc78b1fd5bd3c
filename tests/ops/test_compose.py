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
from pathlib import Path
from typing import Any

import pytest

from deploy import make_secrets
from tests.ops.conftest import ROOT
from tests.ops.least_privilege import ROLES_SQL

APPLICATION_SERVICES = {"invitation", "notifier", "expiry"}
TOOLS = {"cli", "cli-admin", "sample-backend"}
REQUIRED_VALUES = {"PUBLIC_BASE_URL"}
# The contract's settings, the secret ones as <NAME>_FILE.
CONTRACT_ENVIRONMENT = {"AMQP_URL_FILE", "DATABASE_URL_FILE", "PUBLIC_BASE_URL", "HTTP_PORT"}
SMTP_ENVIRONMENT = {"SMTP_HOST", "SMTP_PORT", "SMTP_FROM"}
# Settings that hold a secret: only ever given as files.
SECRET_SETTINGS = {"SECRETS_KEY", "SMTP_PASSWORD", "AMQP_URL", "DATABASE_URL", "POSTGRES_PASSWORD"}
# Ours is built here; every other image is pinned to an exact release: a digest, or a tag
# with the full version (PostgreSQL numbers its releases MAJOR.MINOR since 10).
EXACT_RELEASE = re.compile(
    r"@sha256:[0-9a-f]{64}$|:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$|^postgres:\d+\.\d+(-[a-z0-9.]+)?$"
)

# The compose specification's service keys this file may use: a typo ("healtcheck")
# would otherwise be ignored by this test and refused only by Docker.
KNOWN_SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "environment",
    "env_file", "healthcheck", "hostname", "image", "init", "labels", "logging", "mem_limit",
    "networks", "ports", "profiles", "restart", "secrets", "stop_grace_period", "stop_signal",
    "user", "volumes", "working_dir",
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
    return {**env_example, "PUBLIC_BASE_URL": "https://invitations.example.com"}


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


def test_services_restart_unless_stopped_by_the_operator(compose: dict[str, Any]) -> None:
    for name, service in long_running(compose).items():
        assert service.get("restart") == "unless-stopped", name


def test_every_container_has_a_memory_limit_and_rotated_logs(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert re.fullmatch(r"\d+[mg]", service.get("mem_limit", "")), name
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert set(logging.get("options", {})) == {"max-size", "max-file"}, name


def test_images_are_pinned_to_an_exact_release(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" not in service:
            assert EXACT_RELEASE.search(image), f"{name}: {image} is not an exact version"


def test_the_broker_and_the_database_keep_their_hostname_and_their_data_in_volumes(
    compose: dict[str, Any],
) -> None:
    for name, data in (("rabbitmq", "/var/lib/rabbitmq"), ("postgres", "/var/lib/postgresql/data")):
        service = compose["services"][name]
        # RabbitMQ names its data directory after the node, rabbit@HOSTNAME.
        assert service["hostname"] == name
        volume, _, target = service["volumes"][0].partition(":")
        assert target == data
        assert volume in compose["volumes"]


def test_application_services_are_built_from_the_one_image_and_stop_within_their_grace(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    images = {services[n]["image"] for n in [*APPLICATION_SERVICES, *TOOLS]}
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
        assert environment["AMQP_URL_FILE"] == f"/run/secrets/{name}_amqp_url"
        assert environment["DATABASE_URL_FILE"] == f"/run/secrets/{name}_database_url"
        assert environment["PUBLIC_BASE_URL"] == "https://invitations.example.com"
        assert "DEVELOPMENT_MODE" not in environment, "production refuses a missing key"
    for name in ("invitation", "notifier"):
        environment = resolved["services"][name]["environment"]
        assert environment["SECRETS_KEY_FILE"] == "/run/secrets/secrets_key"
    notifier = resolved["services"]["notifier"]["environment"]
    assert set(notifier) >= SMTP_ENVIRONMENT
    assert notifier["SMTP_HOST"] == "mailpit"
    assert notifier["SMTP_PORT"] == "1025"


def test_no_secret_is_in_an_environment_variable_only_in_files_under_run_secrets(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    resolved = interpolate(compose, filled_env(env_example))
    for name, service in resolved["services"].items():
        environment = service.get("environment", {})
        assert not SECRET_SETTINGS & set(environment), f"{name} gets a secret in its environment"
        mounted = set(service.get("secrets", []))
        for variable, value in environment.items():
            if variable.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert value == f"/run/secrets/{secret}", f"{name}: {variable}"
                assert secret in mounted, f"{name}: {variable} names a file it does not mount"
        assert mounted <= set(resolved["secrets"]), name
    assert not any(v in SECRET_SETTINGS or "PASSWORD" in v for v in env_example), ".env holds one"


def test_each_part_connects_as_a_user_and_role_of_its_own(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    resolved = interpolate(compose, filled_env(env_example))
    connections = {}
    for name in [*APPLICATION_SERVICES, *TOOLS]:
        environment = resolved["services"][name]["environment"]
        connections[name] = (
            environment.get("AMQP_URL_FILE"),
            environment.get("DATABASE_URL_FILE"),
        )
    assert connections["cli"] == (None, "/run/secrets/cli_database_url")
    assert connections["cli-admin"] == (
        "/run/secrets/cli_amqp_url",
        "/run/secrets/cli_admin_database_url",
    )
    assert connections["sample-backend"] == ("/run/secrets/backend_amqp_url", None)
    for kind in (0, 1):
        files = [c[kind] for c in connections.values() if c[kind] is not None]
        assert len(set(files)) == len(files), "two parts share a user or a role"
    # The invitation service takes the internal commands of these two broker users only.
    invitation = resolved["services"]["invitation"]["environment"]
    assert invitation["INTERNAL_SENDERS"] == "notifier,expiry"


def test_only_the_invitation_service_creates_the_event_store(compose: dict[str, Any]) -> None:
    # eventsourcing reads CREATE_TABLE for the application named "Invitations" from
    # INVITATIONS_CREATE_TABLE; its other readers may not run DDL on tables they do not own.
    for name in ["notifier", "expiry", "cli", "cli-admin"]:
        assert compose["services"][name]["environment"]["INVITATIONS_CREATE_TABLE"] == "n", name
    assert "INVITATIONS_CREATE_TABLE" not in compose["services"]["invitation"]["environment"]


def test_every_secret_file_compose_mounts_is_one_make_secrets_writes(
    compose: dict[str, Any], env_example: dict[str, str], tmp_path: Path
) -> None:
    make_secrets.make(
        make_secrets.SecretsFolder(tmp_path),
        database="invitations",
        postgres_host="postgres",
        rabbitmq_host="rabbitmq",
    )
    resolved = interpolate(compose, {**filled_env(env_example), "SECRETS_DIR": str(tmp_path)})
    for name, secret in resolved["secrets"].items():
        assert Path(secret["file"]).is_file(), f"{name}: make_secrets writes no {secret['file']}"


def test_rabbitmq_loads_the_users_and_permissions_at_boot(compose: dict[str, Any]) -> None:
    rabbitmq = compose["services"]["rabbitmq"]
    config = [v for v in rabbitmq["volumes"] if v.startswith("./deploy/rabbitmq/rabbitmq.conf:")]
    assert config == ["./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-invitations.conf:ro"]
    settings = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "load_definitions = /run/secrets/rabbitmq_definitions" in settings.splitlines()
    assert rabbitmq["secrets"] == ["rabbitmq_definitions"]
    assert "environment" not in rabbitmq, "no default user: the definitions name every user"


def test_postgres_creates_the_roles_at_its_first_start_from_mounted_passwords(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    assert (
        "./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro"
        in (postgres["volumes"])
    )
    # Mounted outside initdb.d: the image would run a .sql there without its variables.
    assert "./deploy/postgres/roles.sql:/etc/invitations/roles.sql:ro" in postgres["volumes"]
    assert "/etc/invitations/roles.sql" in (ROOT / "deploy/postgres/init-roles.sh").read_text()
    read = set(re.findall(r"(postgres_\w+_password)`", (ROOT / ROLES_SQL).read_text()))
    assert read == {f"postgres_{role}_password" for role in make_secrets.POSTGRES_ROLES}
    assert set(postgres["secrets"]) == read | {"postgres_password"}
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_health_checks_probe_the_port_the_service_serves(compose: dict[str, Any]) -> None:
    for name in APPLICATION_SERVICES:
        service = compose["services"][name]
        port = service["environment"]["HTTP_PORT"]
        assert port != "0"
        assert service["healthcheck"]["test"][:4] == ["CMD", "python", "-m", "shared.ops_http"]
        assert any(p.endswith(f":{port}") for p in service["ports"]), name


@pytest.mark.parametrize("variable", sorted(REQUIRED_VALUES))
def test_the_stack_refuses_to_start_without_each_required_value(
    compose: dict[str, Any], env_example: dict[str, str], variable: str
) -> None:
    env = filled_env(env_example)
    interpolate(compose, env)  # complete: fine
    for absent in ({k: v for k, v in env.items() if k != variable}, {**env, variable: ""}):
        with pytest.raises(InterpolationError, match=variable):
            interpolate(compose, absent)


def test_the_env_example_leaves_the_required_values_empty_and_documents_every_variable(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m["name"] or m["bare"] for m in _VARIABLE.finditer(text) if not m["escaped"]}
    assert used - set(env_example) == set(), "variables .env.example does not mention"
    for variable in REQUIRED_VALUES:
        assert env_example[variable] == "", f"{variable} must be chosen, never defaulted"
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
def test_docker_compose_refuses_to_start_without_each_required_value(
    env_example: dict[str, str],
) -> None:
    for variable in sorted(REQUIRED_VALUES):
        result = compose_config({**filled_env(env_example), variable: ""})
        assert result.returncode != 0, f"compose accepted an empty {variable}"
        assert f"set {variable} in .env" in result.stderr
