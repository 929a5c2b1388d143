"""Fixtures for the administration tests (helpers live in admin.helpers)."""

from __future__ import annotations

import pytest

from admin.helpers import FakeClock, base_data
from enate_routing._loading import parse_config
from enate_routing._model import Config
from enate_routing.admin import Administration, AllowAll, MemoryHistoryStore


@pytest.fixture
def config() -> Config:
    return parse_config(base_data())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def history() -> MemoryHistoryStore:
    return MemoryHistoryStore()


@pytest.fixture
def admin(config: Config, clock: FakeClock, history: MemoryHistoryStore) -> Administration:
    return Administration(config, permissions=AllowAll(), history=history, clock=clock, environ={})
