"""Deterministic aggregate ids: one stream per tenant, account and (tenant, email)."""

from __future__ import annotations

from uuid import UUID, uuid5

_NAMESPACE = UUID("6f0b3d2a-9c1e-4f57-8a3b-2d4c5e6f7a8b")


def tenant_id_to_uuid(tenant_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"tenant:{tenant_id}")


def account_uuid(email: str) -> UUID:
    return uuid5(_NAMESPACE, f"account:{email}")


def membership_uuid(tenant_id: str, email: str) -> UUID:
    return uuid5(_NAMESPACE, f"membership:{tenant_id}:{email}")
