"""Tests of the administration API (docs/semantics.md §7)."""
