"""The operator CLI `invitations`: audit, state at an instant, tamper check, replay, repair."""
