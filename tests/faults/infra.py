"""A PostgreSQL cluster and a RabbitMQ node of the fault suite's own, on free ports.

The shared servers (5432, 5672) carry every other test and every other engineer's work:
the fault suite never stops, restarts or reconfigures them. It creates its own cluster
with `pg_createcluster` and starts its own RabbitMQ node (its own node name, ports,
config, mnesia and log directories under a temporary directory), stops, restarts and
kills those, and removes both at the end, even after a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

PG_VERSION = "15"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def missing_tools() -> str | None:
    """Why the suite cannot run here (None when it can)."""
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "rabbitmqctl", "su"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not RABBITMQ_SERVER.exists():
        return f"{RABBITMQ_SERVER} is not installed"
    if os.geteuid() != 0:
        return "the private cluster and node are created as root (pg_createcluster, su rabbitmq)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _run(*command: str, timeout: float = 60) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


class PrivatePostgres:
    """`pg_createcluster 15 <name>`: trust for local and 127.0.0.1, fsync off (the data
    survives a killed server in the page cache; only the machine's crash would lose it)."""

    def __init__(self) -> None:
        self.name = f"faults_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.database = "faults"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"
        self._admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.created = False

    def create(self) -> None:
        _run(
            "pg_createcluster",
            PG_VERSION,
            self.name,
            "--port",
            str(self.port),
            "-o",
            "fsync=off",
            "-o",
            "max_connections=200",
            "--",
            "--auth-local=trust",
            "--auth-host=trust",
        )
        self.created = True
        self.start()
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _ctl(self, action: str, *options: str) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, action, *options)

    def start(self) -> float:
        """Start the server; returns the moment (monotonic) it first took a connection.

        That moment, not the end of `pg_ctlcluster start`, is when the database is back:
        the wrapper returns up to a second later, and a recovery measured from its end
        would look that much faster than it was.
        """
        starting = subprocess.Popen(
            ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, "start"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            back = self.wait_up(interval=0.02, starting=starting)
        finally:
            output, _ = starting.communicate(timeout=60)
        if starting.returncode != 0:
            raise RuntimeError(f"pg_ctlcluster start failed: {output.decode(errors='replace')}")
        return back

    def stop(self, mode: str = "fast") -> None:
        """`fast` (clients disconnected, a clean shutdown) or `immediate` (a crash)."""
        self._ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> float:
        """Stop and start again; returns the moment the server was back (see `start`)."""
        self.stop(mode)
        return self.start()

    def wait_up(
        self,
        timeout: float = 30,
        *,
        interval: float = 0.1,
        starting: subprocess.Popen[bytes] | None = None,
    ) -> float:
        """Until a connection is taken; returns that moment (monotonic)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._admin_url, connect_timeout=2) as conn:
                    back = time.monotonic()
                    conn.execute("SELECT 1")
                return back
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                if starting is not None and starting.poll() not in (None, 0):
                    raise
                time.sleep(interval)

    def schema_url(self) -> str:
        """A DATABASE_URL on a fresh schema (the scenario's own)."""
        schema = f"s_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        return f"{self.url}?schema={schema}"

    def drop(self) -> None:
        if self.created:
            with contextlib.suppress(RuntimeError):
                _run("pg_dropcluster", "--stop", PG_VERSION, self.name)
            self.created = False


class PrivateRabbit:
    """A second RabbitMQ node (`<name>@localhost`), run as the `rabbitmq` user in the
    foreground of a process of ours, with management and every other plugin off."""

    def __init__(self) -> None:
        self.name = f"faults{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.folder = Path(tempfile.mkdtemp(prefix="faults-rabbit-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        (self.folder / "mnesia").mkdir()
        (self.folder / "log").mkdir()
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            # The machine's disk is shared: never block publishers on its free space.
            "disk_free_limit.absolute = 50MB\n"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")
        # The machine's rabbitmq-env.conf names the shared node: ours has its own.
        (self.folder / "env.conf").write_text(
            "ERL_EPMD_ADDRESS=127.0.0.1\n"
            'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
        )
        self.folder.chmod(0o755)
        _run("chown", "-R", "rabbitmq:rabbitmq", str(self.folder))

    def _environment(self) -> str:
        values = {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "env.conf"),
            "RABBITMQ_PID_FILE": str(self.folder / "pid"),
        }
        return " ".join(f"{k}={v}" for k, v in values.items())

    def start(self, timeout: float = 90) -> float:
        """Start the node; returns the moment (monotonic) its AMQP port took connections."""
        log = (self.folder / "server.log").open("ab")
        command = f"exec env {self._environment()} {RABBITMQ_SERVER}"
        self.process = subprocess.Popen(
            ["su", "rabbitmq", "-s", "/bin/sh", "-c", command],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as one
        )
        log.close()
        return self.wait_up(timeout)

    def wait_up(self, timeout: float = 90) -> float:
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.name} exited; see {self.folder}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ node {self.name} not up after {timeout}s")
            time.sleep(0.02)
        return time.monotonic()

    def ctl(self, *args: str) -> str:
        return _run("rabbitmqctl", "-q", "-n", self.name, *args)

    def stop(self) -> None:
        """A clean stop (what a restart does first)."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop")
        self._reap()

    def kill(self) -> None:
        """SIGKILL of the whole node: `su` starts the server in a session of its own, so
        its process group (the script and the Erlang VM) is killed, then `su`."""
        if self.process is not None and self.process.poll() is None:
            for child in _children(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(child), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def restart(self) -> float:
        """Stop cleanly and start again; returns the moment the node was back."""
        self.stop()
        return self.start()

    def _reap(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()  # reaps it
            return
        # The VM may outlive `su` a moment: wait for the port to close.
        deadline = time.monotonic() + 15
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process = None

    def vhost_url(self) -> str:
        """An AMQP_URL on a fresh vhost (the scenario's own)."""
        vhost = f"v_{uuid.uuid4().hex[:10]}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return f"{self.url}{vhost}"

    def remove(self) -> None:
        if self.process is not None:
            self.stop()
            self.kill()  # whatever the clean stop left
        shutil.rmtree(self.folder, ignore_errors=True)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.drop()


@contextlib.contextmanager
def private_rabbit() -> Iterator[PrivateRabbit]:
    node = PrivateRabbit()
    try:
        node.start()
        yield node
    finally:
        node.remove()
