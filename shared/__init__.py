"""What the services really share: the public contract, topology names and settings."""
