"""The notifier: the right email to the right people, exactly once (rules 24-26)."""
