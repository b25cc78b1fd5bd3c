"""The notifier's adapters: its tables, SMTP, templates, sealed passwords, commands."""
