"""Entrypoints: the command subscriber."""
