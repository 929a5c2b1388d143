"""Real mail servers on loopback for the test suite (see ../shared/mailservers.md)."""
