"""Pure domain: aggregates and rules. No I/O, no clock, no environment."""
