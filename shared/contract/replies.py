"""The one reply a command with `reply_to` gets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ReplyError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    details: dict[str, Any] = {}


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    command_id: str | None
    status: Literal["accepted", "rejected"]
    result: dict[str, Any] | None = None
    error: ReplyError | None = None

    @classmethod
    def accepted(cls, command_id: str, result: dict[str, Any]) -> Reply:
        return cls(command_id=command_id, status="accepted", result=result)

    @classmethod
    def rejected(
        cls,
        command_id: str | None,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> Reply:
        return cls(
            command_id=command_id,
            status="rejected",
            error=ReplyError(code=code, message=message, details=details or {}),
        )
