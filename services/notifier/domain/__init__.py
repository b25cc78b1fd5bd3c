"""Pure notifier rules: which emails an event implies, and to whom. No I/O, no clock."""
