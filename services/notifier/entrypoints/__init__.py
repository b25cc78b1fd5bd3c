"""How the outside world reaches the notifier: the events queue (a wake-up signal)."""
