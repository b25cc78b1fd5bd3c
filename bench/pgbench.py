"""PostgreSQL's single-client commit rate on this machine, with `pgbench`.

The yardstick for the event store: one client, one one-row INSERT per transaction
(`-c 1 -n`, a custom script), against a scratch table in a schema of its own that is
dropped afterwards. Every commit waits for its WAL flush, as an event-store save does,
so this is roughly the rate one writer committing one command at a time could reach.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from tests.support import POSTGRES

__all__ = ["PGBENCH", "single_client_commits_per_s"]

PGBENCH = "/usr/bin/pgbench"
_TPS = re.compile(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)")


async def single_client_commits_per_s(seconds: int = 10, url: str = POSTGRES) -> float:
    schema = f"pgbench_{uuid.uuid4().hex[:10]}"
    table = sql.Identifier(schema, "commits")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v int)").format(table))
    try:
        with tempfile.TemporaryDirectory() as directory:
            script = Path(directory) / "insert.sql"
            script.write_text(f'INSERT INTO "{schema}".commits (v) VALUES (1);\n')
            parts = urlsplit(url)
            process = await asyncio.create_subprocess_exec(
                PGBENCH,
                "-n",  # no vacuum of pgbench's own tables: we have none
                "-c", "1",
                "-T", str(seconds),
                "-f", str(script),
                "-h", parts.hostname or "127.0.0.1",
                "-p", str(parts.port or 5432),
                "-U", parts.username or "postgres",
                parts.path.lstrip("/") or "postgres",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"pgbench failed: {err.decode(errors='replace')}")
        match = _TPS.search(out.decode())
        if match is None:
            raise RuntimeError(f"no tps in pgbench's output: {out.decode()}")
        return float(match.group(1))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
