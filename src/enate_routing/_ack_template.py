"""The acknowledgement template (docs/configuration.md "Acknowledgements"): subject and text with placeholders.

Configured per route and per fallback as ``acknowledgement = { subject = "...", text = "..." }``. The
placeholders are ``{reference}`` (the work item's reference the host's handler returned, empty when it
returned nothing), ``{subject}`` (the original subject), ``{route}`` and ``{sender}``; ``{{`` and ``}}``
are literal braces. Any other placeholder is a configuration error, found when the file is loaded.
"""

from __future__ import annotations

import re
import string

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from enate_routing._link_pattern import reference_group
from enate_routing._model_types import _Frozen

__all__ = [
    "DEFAULT_ACK_SUBJECT",
    "DEFAULT_ACK_TEXT",
    "DEFAULT_SUBJECT_TOKEN",
    "PLACEHOLDERS",
    "AckTemplate",
    "placeholders_of",
    "subject_token_problem",
    "token_links",
]

DEFAULT_SUBJECT_TOKEN = "[REF:{ref}]"  # noqa: S105 — a subject token, not a password
"""The reference token of the default ``[linking] subject_pattern`` (``\\[REF:(?P<ref>[A-Z]+-\\d+)\\]``)."""

SAMPLE_REFERENCES = ("T-000123", "123456", "ABC123", "abc-123")
"""References tried when a ``subject_token`` is checked against ``subject_pattern`` at load."""

PLACEHOLDERS = ("reference", "subject", "route", "sender")

DEFAULT_ACK_SUBJECT = "Re: {subject}"
DEFAULT_ACK_TEXT = (
    "Thank you for your email. We have received it and will get back to you.\n\n"
    "This is an automatic reply; please keep the subject line when you write to us about this matter.\n"
)
DEFAULT_ACK_TEXT_WITH_REFERENCE = (
    "Thank you for your email. We have received it as {reference} and will get back to you.\n\n"
    "This is an automatic reply; please keep the subject line (it carries {reference}) when you write to us "
    "about this matter.\n"
)


def placeholders_of(text: str) -> list[str]:
    """The placeholder names in ``text``; ValueError for a stray brace or a conversion/format spec."""
    names: list[str] = []
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        names.append(name)
    return names


class AckTemplate(_Frozen):
    """Subject and text of an acknowledgement. ``text = None`` keeps the default text, which names the
    reference when the handler returned one."""

    subject: str = DEFAULT_ACK_SUBJECT
    text: str | None = None

    @field_validator("subject", "text")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            names = placeholders_of(value)
        except ValueError as exc:
            raise PydanticCustomError("template", "not a valid template: {reason}",
                                      {"reason": str(exc), "item": value}) from None
        unknown = [n for n in names if n not in PLACEHOLDERS]
        if unknown:
            raise PydanticCustomError(
                "template", "unknown placeholder {name}; known: {known}",
                {"name": f"{{{unknown[0]}}}", "known": ", ".join(f"{{{p}}}" for p in PLACEHOLDERS), "item": value},
            )
        return value

    def text_for(self, reference: str | None) -> str:
        if self.text is not None:
            return self.text
        return DEFAULT_ACK_TEXT_WITH_REFERENCE if reference else DEFAULT_ACK_TEXT


def token_links(token: str, reference: str, pattern: str) -> bool:
    """Whether ``token`` filled with ``reference`` is found by ``pattern`` with that same reference."""
    compiled = re.compile(pattern)
    found = compiled.search(token.format(ref=reference))
    if found is None:
        return False
    return found.group(reference_group(compiled)) == reference


def subject_token_problem(token: str, pattern: str) -> str | None:
    """Why ``token`` cannot be the acknowledgements' reference token for ``pattern``, or None."""
    if not pattern:
        return "subject tokens are off (subject_pattern is empty); a subject_token would never link"
    try:
        names = placeholders_of(token)
    except ValueError as exc:
        return f"not a valid format string: {exc}"
    if names != ["ref"]:
        return "the token needs exactly one placeholder, {ref}"
    if not any(token_links(token, sample, pattern) for sample in SAMPLE_REFERENCES):
        return (f"the token filled with a sample reference ({', '.join(SAMPLE_REFERENCES)}) is not matched by "
                "subject_pattern with that reference")
    return None
