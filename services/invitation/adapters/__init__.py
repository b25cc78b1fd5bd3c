"""Adapters: the event store and its side tables, the outbox relay, broker publishing."""
