"""The three services and the operator CLI."""
