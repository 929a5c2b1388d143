"""Tests of the administration API (SPEC §7)."""
