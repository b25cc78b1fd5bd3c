"""Temporary-password sheets: one PDF per manual password, retrieved once (rules 5, 33).

The order is what keeps a password from being lost: the sheet's file is created first,
so that a name already taken or a directory that cannot be written refuses before
anything is spent; then the password is retrieved, which destroys the service's only
copy; then the sheet is written. A refused retrieval removes the empty file. A crash
between the retrieval and the write loses that password: the administrator resends the
invitation, which issues a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol
from uuid import UUID

from shared.contract import ReplyError


@dataclass(frozen=True)
class TempPasswordSheet:
    tenant_id: str | None
    email: str
    display_name: str | None
    temp_password: str = field(repr=False)
    valid_until: str | None
    locale: str | None


@dataclass(frozen=True)
class WantedSheet:
    """A manual password to retrieve, and the file its sheet goes to."""

    tenant_id: str
    invitation_id: UUID
    email: str
    display_name: str | None
    locale: str | None
    file_name: str


@dataclass(frozen=True)
class Retrieval:
    email: str
    path: Path | None  # the sheet written, or None
    code: str | None = None  # why not: a rejection code
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None


class RetrievedPassword(Protocol):
    @property
    def password(self) -> str: ...

    @property
    def valid_until(self) -> str | None: ...


Retrieve = Callable[[WantedSheet], "RetrievedPassword | ReplyError"]
Reserve = Callable[[Path], BinaryIO]
Write = Callable[[BinaryIO, Path, TempPasswordSheet], None]


def sheet_file_name(email: str, index: int | None = None) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._-]", "_", email)
    return f"{safe}.pdf" if index is None else f"{index + 1:05d}_{safe}.pdf"


def write_sheet(
    wanted: WantedSheet, directory: Path, retrieve: Retrieve, reserve: Reserve, write: Write
) -> Retrieval:
    path = directory / wanted.file_name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        out = reserve(path)
    except FileExistsError:
        return Retrieval(
            wanted.email, None, "file_exists", f"{path} already exists; nothing was retrieved"
        )
    except OSError as error:
        return Retrieval(
            wanted.email, None, "file_error", f"cannot write {path}: {error}; nothing retrieved"
        )
    retrieved = retrieve(wanted)
    if isinstance(retrieved, ReplyError):
        out.close()
        path.unlink(missing_ok=True)
        return Retrieval(wanted.email, None, retrieved.code, retrieved.message)
    sheet = TempPasswordSheet(
        wanted.tenant_id,
        wanted.email,
        wanted.display_name,
        retrieved.password,
        retrieved.valid_until,
        wanted.locale,
    )
    write(out, path, sheet)
    return Retrieval(wanted.email, path)
