"""Deterministic aggregate ids: one stream per tenant, account and (tenant, email), one
roster of administrators per tenant, one record per undeliverable email."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

_NAMESPACE = UUID("6f0b3d2a-9c1e-4f57-8a3b-2d4c5e6f7a8b")


def tenant_id_to_uuid(tenant_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"tenant:{tenant_id}")


# Cached: a mass invite derives each id four or five times (prefetch, checks, the new
# aggregate, the report), and uuid5 costs ~10 µs. Pure functions, bounded cache.
@lru_cache(maxsize=1 << 15)
def account_uuid(email: str) -> UUID:
    return uuid5(_NAMESPACE, f"account:{email}")


@lru_cache(maxsize=1 << 15)
def membership_uuid(tenant_id: str, email: str) -> UUID:
    return uuid5(_NAMESPACE, f"membership:{tenant_id}:{email}")


def administrators_uuid(tenant_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"administrators:{tenant_id}")


def notification_failure_uuid(message_key: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"notification-failure:{message_key}")
