"""Secret inputs wrapped before pydantic validates them, so no validation error can show one (docs/configuration.md).

pydantic puts the input of a failing field — and, for a model-level error, the whole input mapping — into
the error's text, ``errors()`` and ``json()``, and the loader's ConfigError keeps that error as its
``__context__``. The configuration models pass their input through :func:`hide_secret_inputs` first (in a
wrap validator, so the validators inside, and the errors they raise, see only the wrapped values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

__all__ = ["SECRET_INPUTS", "hide_secret_inputs"]

SECRET_INPUTS = frozenset({"password", "certificate_password"})


class _Redacted:
    """Stands in for a secret input of the wrong type: fails validation as it would, shows no value."""

    def __repr__(self) -> str:
        return "'**********'"


def hide_secret_inputs(data: Any) -> Any:
    """A connector's input with every secret field wrapped: strings in SecretStr, anything else redacted.

    Wrapped, the secret shows as ``**********`` in any error, while a valid secret still validates
    (``SecretStr`` accepts a ``SecretStr``) and a wrong type still fails with the same error type.
    """
    if not isinstance(data, Mapping) or not SECRET_INPUTS.intersection(data):
        return data
    hidden = dict(data)
    for key in SECRET_INPUTS.intersection(data):
        value = hidden[key]
        if isinstance(value, str):
            hidden[key] = SecretStr(value)
        elif value is not None and not isinstance(value, SecretStr):
            hidden[key] = _Redacted()
    return hidden
