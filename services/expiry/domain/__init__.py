"""Pure scheduling logic: no I/O, no clock (every method that needs the time takes `now`)."""
