"""pytest fixtures for the loopback servers (filled in by the transports work)."""
