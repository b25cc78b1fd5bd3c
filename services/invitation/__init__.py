"""The invitation service: commands in, events stored, events out."""
