"""No secret in any exception (issue 13 item 5): str, errors(), json(), __context__, __cause__ of our models'
validation errors — and of the ConfigError the loader makes of them — never carry a secret's value."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from pydantic import ValidationError

from enate_routing._loading import parse_config
from enate_routing._model import Config, Connector
from enate_routing.errors import ConfigError

SECRET = "Hunter2-Sekret"
BASE: dict[str, Any] = {
    "name": "Support", "service": "other", "username": "support@contoso.example",
    "primary_address": "support@contoso.example", "use_for": "incoming",
    "incoming": {"protocol": "imap", "host": "mail.contoso.example", "port": 993, "security": "ssl"},
}
# Each case fails validation in a different place: the secret field itself, a sibling field, the model's
# after-validator (whose error pydantic reports with the whole input), and the secret with a wrong type.
CASES: dict[str, dict[str, Any]] = {
    "too long": {"password": SECRET * 10},
    "wrong type": {"password": [SECRET]},
    "both given": {"password": SECRET, "password_env": "SUPPORT_PASSWORD"},
    "after-validator": {"password": SECRET, "username": None},
    "sibling field": {"certificate_password": SECRET, "use_for": "sideways"},
    "unknown field": {"password": SECRET, "pasword": "x"},
}


def leaks(exc: BaseException) -> list[str]:
    """Where the secret shows: the five places the issue names, and the formatted exception."""
    places = {
        "str": str(exc),
        "errors()": repr(exc.errors()) if isinstance(exc, ValidationError) else "",
        "json()": exc.json() if isinstance(exc, ValidationError) else "",
        "__context__": "" if exc.__context__ is None else str(exc.__context__) + repr(exc.__context__),
        "__cause__": "" if exc.__cause__ is None else str(exc.__cause__) + repr(exc.__cause__),
        "traceback": "".join(traceback.format_exception_only(exc)),
    }
    if isinstance(exc.__context__, ValidationError):
        places["__context__.errors()"] = repr(exc.__context__.errors()) + exc.__context__.json()
    return [place for place, text in places.items() if SECRET in text]


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_connector_validation_error_carries_no_secret(extra: dict[str, Any]) -> None:
    """Connector.model_validate fails, and the secret is in none of the error's texts."""
    with pytest.raises(ValidationError) as caught:
        Connector.model_validate({**BASE, **extra})
    assert leaks(caught.value) == []


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_config_validation_error_carries_no_secret(extra: dict[str, Any]) -> None:
    """The same inside a whole configuration, where Config's own checks report the whole input too."""
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"connectors": [{**BASE, **extra}]})
    assert leaks(caught.value) == []


def test_config_cross_check_error_carries_no_secret() -> None:
    """A valid connector with its password, but no fallback: Config's after-validator fails without it."""
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"connectors": [{**BASE, "password": SECRET}]})
    assert "exactly one [[fallbacks]]" in str(caught.value)
    assert leaks(caught.value) == []


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_config_error_and_its_context_carry_no_secret(extra: dict[str, Any]) -> None:
    """parse_config's ConfigError, and the ValidationError left in its __context__, carry no secret."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"connectors": [{**BASE, **extra}]})
    assert leaks(caught.value) == []


def test_valid_secrets_still_validate() -> None:
    """Wrapping secret inputs changes nothing for valid ones: the value is kept, hidden in repr."""
    connector = Connector.model_validate({**BASE, "password": SECRET})
    assert connector.password_value() == SECRET
    assert SECRET not in repr(connector)
