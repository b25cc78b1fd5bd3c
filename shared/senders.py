"""Who sends a command: the broker user it is published as (rule 29).

RabbitMQ refuses a message whose AMQP `user_id` property differs from the login of the
connection that publishes it, so the invitation service takes `user_id` as proof of the
sender. Our own clients set it to the login of their AMQP_URL.
"""

from __future__ import annotations

from yarl import URL

__all__ = ["broker_user"]


def broker_user(amqp_url: str) -> str:
    """The login a connection to `amqp_url` uses: aio-pika's, `guest` when none is given."""
    return URL(amqp_url).user or "guest"
