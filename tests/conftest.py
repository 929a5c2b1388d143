"""Suite-wide settings: hypothesis profiles and the loopback mail-server fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The loopback Dovecot / aiosmtpd fixtures live in tests/mailrig (pythonpath = tests).
pytest_plugins = ["mailrig.fixtures", "mailrig.cloud_fixtures"]

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
