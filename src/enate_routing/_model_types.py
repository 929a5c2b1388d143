"""The building blocks of the configuration models: literal types, annotated list types, the frozen base.

Shared by the connector models (``_connector``) and the route and configuration models (``model``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StringConstraints
from pydantic_core import PydanticCustomError

from enate_routing._patterns import AddressPattern, normalize_address, normalize_extension, split_list, subject_words

Service = Literal[
    "gmail-pop3", "gmail-imap", "office365-pop3", "office365-imap", "office365-graph", "gmail-smtp",
    "office365-smtp-relay", "other",
]
Security = Literal["ssl", "starttls", "none"]
UseFor = Literal["incoming", "outgoing", "both"]
OutgoingAuth = Literal["none", "username-password", "certificate", "oauth2"]
IncomingAuth = Literal["username-password", "oauth2"]
AdditionalAccess = Literal["shared-folder", "delegate", "office365-delegate"]
"""How the additional mailbox is opened: a shared IMAP folder, a delegated (master-user) login, or Office 365's
delegated login (``login\\shared`` with a password; the shared address with the delegate's OAuth token)."""

DEFAULT_SUBJECT_PATTERN = r"\[REF:(?P<ref>[A-Z]+-\d+)\]"


# --- reusable annotated types -------------------------------------------------------------------------


def _as_list(value: object) -> object:
    if isinstance(value, str | list | tuple):
        return split_list(value)
    return value


def _address(value: str) -> str:
    normal = normalize_address(value)
    if normal is None:
        raise PydanticCustomError("address", "not a valid email address", {"item": value})
    return normal


def _pattern(value: str) -> str:
    try:
        return str(AddressPattern.parse(value))
    except ValueError as exc:
        raise PydanticCustomError("pattern", str(exc), {"item": value}) from None


def _patterns(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_pattern(v) for v in values))


def _extensions(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not normalize_extension(value):  # "." names no extension; dropped, it would turn the rule off
            raise PydanticCustomError("extension", "not a file extension such as '.pdf'", {"item": value})
    return tuple(dict.fromkeys(normalize_extension(v) for v in values))


def _words(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


Address = Annotated[str, AfterValidator(_address)]
"""A valid email address, stored case-folded with an IDNA domain."""

PatternList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_patterns)]
"""Semicolon list (or array) of address patterns: exact addresses or ``*domain``."""

ExtensionList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_extensions)]
"""Semicolon list of file extensions, stored without the leading dot, case-folded."""

TextList = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_words)]
"""Semicolon list of free-text items (keywords, company names); matching case-folds them."""

MAX_KEYWORD_WORDS = 32  # a subject is one line; the shadowing analysis compares the runs of words of phrases


def _short_phrases(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if len(subject_words(value)) > MAX_KEYWORD_WORDS:
            raise PydanticCustomError("keyword", "a keyword has at most {limit} words",
                                      {"limit": MAX_KEYWORD_WORDS, "item": value[:60] + "…"})
    return values


KeywordList = Annotated[TextList, AfterValidator(_short_phrases)]
"""Semicolon list of subject keywords: phrases of at most MAX_KEYWORD_WORDS words."""

# A line break or NUL in a value sent to a server would end the command early: the rest would be read as a
# command of its own (an injection).
_LINE_BREAK_OR_NUL = re.compile(r"[\r\n\x00]")
_ONE_LINE_MESSAGE = "must not contain a line break or NUL"


def _one_line(value: str) -> str:
    if _LINE_BREAK_OR_NUL.search(value) is not None:
        raise PydanticCustomError("one_line", _ONE_LINE_MESSAGE, {"item": value})
    return value


def _one_line_secret(value: SecretStr) -> SecretStr:
    if _LINE_BREAK_OR_NUL.search(value.get_secret_value()) is not None:
        raise PydanticCustomError("one_line", _ONE_LINE_MESSAGE)  # no item: the value is a secret
    return value


_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _host(value: str) -> str:
    """A host name (IDNA allowed) or an IP address, as a socket takes it; refused here rather than as a
    puzzling connection error on first use."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    try:
        name = value.casefold().removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label
        name = ""
    if not name or len(name) > 253 or not all(map(_HOST_LABEL.fullmatch, name.split("."))):
        raise PydanticCustomError(
            "host", "not a host name or IP address (the name alone: no scheme, port, path or brackets)",
            {"item": value})
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Secret = Annotated[SecretStr, Field(max_length=50), AfterValidator(_one_line_secret)]
OneLine = Annotated[str, AfterValidator(_one_line)]
"""A value sent to a server as written (a login, a mailbox)."""
Folder = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_one_line)]
Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_host)]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]  # strict: TOML's ``true`` is not port 1
EnvName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _field_error(field: str, message: str, item: str | None = None) -> PydanticCustomError:
    return PydanticCustomError("connector", message, {"field": field, "item": item})
