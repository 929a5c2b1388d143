"""TOML / JSON files ⇄ :class:`~enate_routing._model.Config`, with errors a person can act on (docs/semantics.md §6).

pydantic's ``ValidationError`` stops here: every problem becomes a one-line
:class:`~enate_routing.errors.ConfigIssue` naming the file, the connector or route, the field and the
offending item — never a pydantic dump and never a secret's value.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from enate_routing._certificates import CABundleError, load_ca_bundle, load_pkcs12
from enate_routing._connector import Connector
from enate_routing._model import Config
from enate_routing._paths import configured_path
from enate_routing.errors import CertificateError, ConcurrentEditError, ConfigError, ConfigIssue

__all__ = [
    "check_ca_files",
    "check_certificates",
    "check_client_certificate",
    "config_schema",
    "dump_config",
    "load_config",
    "parse_config",
    "save_config",
    "secret_reference",
]

_SECRET_FIELDS = frozenset({"password", "certificate_password"})
_SECTIONS = {
    "connectors": "connector",
    "routes": "route",
    "fallbacks": "fallback",
    "outgoing_routes": "outgoing route",
    "blocked": "blocked entry",
}


def load_config(
    path: str | Path,
    *,
    verify_certificates: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate a TOML or JSON configuration file.

    Certificates named by connectors are loaded and checked relative to the file's folder unless
    ``verify_certificates`` is false. Raises ConfigError (file, where, field, item) on any problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError.single(f"cannot read the configuration ({reason})", file=str(path)) from None
    try:
        data = _decode(text, path.suffix.lower())
        config = parse_config(data)
        if verify_certificates:
            check_certificates(config, base_dir=path.parent, environ=environ)
    except ConfigError as exc:
        raise exc.with_file(str(path)) from None
    return config


def _decode(text: str, suffix: str) -> dict[str, Any]:
    text = text.removeprefix("\ufeff")  # a byte order mark some Windows editors write
    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_unique_keys)
            if not isinstance(data, dict):
                raise ConfigError.single("the JSON document must be an object")
            return data
        return tomllib.loads(text)
    except ConfigError:
        raise
    except json.JSONDecodeError as exc:
        raise ConfigError.single(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.single(f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError.single("nested too deeply to read") from None
    except ValueError:  # the one ValueError left: an integer of more digits than Python converts
        raise ConfigError.single(f"a number has more than {sys.get_int_max_str_digits()} digits") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is an error (``json`` would keep the last one silently; TOML refuses)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ConfigError.single(f"the key {key!r} is given twice in one JSON object")
        seen.add(key)
    return dict(pairs)


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a mapping of the file's shape; raises ConfigError with every problem found."""
    _refuse_lone_surrogates(data)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_issues(exc, data)) from None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(data: Mapping[str, Any]) -> None:
    """Text no UTF-8 file or database can hold (``json.loads`` makes it of an escape like ``"\\ud800"``) is
    refused here, located; pydantic lets it through most text fields. Model instances (unchanged objects of
    an admin edit) were checked when they were made and are not walked again."""
    def walk(value: object, loc: list[str]) -> list[str] | None:
        if isinstance(value, str):
            return loc if _LONE_SURROGATE.search(value) else None
        items: Any = value.items() if isinstance(value, Mapping) else (
            enumerate(value) if isinstance(value, list | tuple) else ())
        for key, item in items:
            shown = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
            if (found := walk(key, [*loc, shown]) or walk(item, [*loc, shown])) is not None:
                return found
        return None

    try:  # the fast common case: everything encodes (json is C code; models are skipped as null)
        json.dumps(data, ensure_ascii=False, default=lambda _: None).encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    except (TypeError, ValueError, RecursionError):
        return  # not of a file's shape (odd keys, cycles, too deep): validation reports that
    loc = walk(data, [])
    if loc is not None:
        where, field = _locate(loc, data)
        raise ConfigError.single("not valid Unicode text (a lone surrogate, which no file can hold)",
                                 where=where, field=field or None)


def _issues(exc: ValidationError, data: Mapping[str, Any]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        original = ctx.get("error")
        if isinstance(original, ConfigError):  # cross-object checks already located themselves
            issues.extend(original.issues)
            continue
        loc = [str(p) for p in error["loc"]]
        where, field = _locate(loc, data)
        field = ctx.get("field") or field
        problem = _problem(error)
        item = ctx.get("item")
        if item is None and error["type"] in ("literal_error", "enum", "string_type", "int_parsing",
                                              "bool_parsing", "string_too_long"):
            value = error.get("input")
            item = value if isinstance(value, str | int | bool) else None
        secret = any(part in _SECRET_FIELDS for part in str(field).split("."))
        issues.append(ConfigIssue(problem, where=where, field=field or None,
                                  item=None if secret or item is None else str(item)))
    return issues


def _problem(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # a model field; a dataclass field (Target)
        return "unknown field"
    if kind in ("too_long", "string_too_long"):
        return f"must be at most {error['ctx']['max_length']} characters"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _locate(loc: list[str], data: Mapping[str, Any]) -> tuple[str | None, str]:
    """('routes', '2', 'rules', 'senders', '0') → ("route 'X' of connector 'Y'", "rules.senders")."""
    if not loc:
        return None, ""
    section, rest = loc[0], loc[1:]
    label = _SECTIONS.get(section)
    if label is None or not rest or not rest[0].isdigit():
        return (f"[{section}]" if section in ("companies", "linking", "limits") else None), ".".join(
            p for p in loc if not p.isdigit() or section == "companies"
        )
    index = int(rest[0])
    entries = data.get(section)
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else {}
    entry = entry if isinstance(entry, Mapping) else {}
    name = entry.get("name")
    connector = entry.get("connector")
    if section == "connectors":
        where = f"connector {name!r}" if name else f"connector #{index + 1}"
    elif section == "routes":
        where = f"route {name!r}" if name else f"route #{index + 1}"
        if connector:
            where += f" of connector {connector!r}"
    elif section == "fallbacks":
        where = f"fallback of connector {connector!r}" if connector else f"fallback #{index + 1}"
    elif section == "blocked":
        where = f"blocked entry #{index + 1}"
    else:
        where = f"{label} {name!r}" if name else f"{label} #{index + 1}"
    field = ".".join(p for p in rest[1:] if not p.isdigit() and not p.startswith("function-"))
    return where, field


def check_certificates(
    config: Config, *, base_dir: Path = Path(), environ: Mapping[str, str] | None = None
) -> None:
    """Load every connector's PKCS#12 certificate and check it (docs/semantics.md §2), and every CA file it
    names, resolved as the transports resolve them; raises a CertificateError."""
    for connector in config.connectors:
        check_ca_files(connector, base_dir=base_dir)
        check_client_certificate(connector, base_dir=base_dir, environ=environ)


def check_ca_files(connector: Connector, *, base_dir: Path = Path()) -> None:
    """Every CA file ``connector`` names (incoming, outgoing, oauth) is a readable PEM bundle; a CertificateError."""
    for field, ca_file in _ca_files(connector):
        _check_ca_file(configured_path(ca_file, base_dir), f"connector {connector.name!r}", field, ca_file)


def check_client_certificate(
    connector: Connector, *, base_dir: Path = Path(), environ: Mapping[str, str] | None = None
) -> None:
    """``connector``'s PKCS#12 certificate, when it has one, loads and is valid now; a CertificateError."""
    if connector.certificate is not None:
        load_pkcs12(configured_path(connector.certificate, base_dir), connector.certificate_password_value(environ),
                    where=f"connector {connector.name!r}")


def _ca_files(connector: Connector) -> Iterator[tuple[str, str]]:
    for field, settings in (("incoming", connector.incoming), ("outgoing", connector.outgoing),
                            ("oauth", connector.oauth)):
        if settings is not None and settings.ca_file is not None:
            yield f"{field}.ca_file", settings.ca_file


def _check_ca_file(path: Path, where: str, field: str, written: str) -> None:
    """The PEM bundle the transports will trust (loaded by the same function), refused now if unusable."""
    try:
        load_ca_bundle(path)
    except CABundleError as problem:
        raise CertificateError.single(problem.reason, where=where, field=field, item=written) from None


def dump_config(config: Config, *, include_secrets: bool = False) -> dict[str, Any]:
    """The configuration as plain data of the file's shape.

    Inline secrets are left out unless ``include_secrets``; references (``*_env``) are always kept.
    Defaults are left out, so the result reads like a hand-written file.
    """
    data: dict[str, Any] = config.model_dump(mode="json", exclude_defaults=True)
    for connector, original in zip(data.get("connectors", []), config.connectors, strict=True):
        connector.pop("password", None)
        connector.pop("certificate_password", None)
        if include_secrets:
            if original.password is not None:
                connector["password"] = original.password.get_secret_value()
            if original.certificate_password is not None:
                connector["certificate_password"] = original.certificate_password.get_secret_value()
    # Fallbacks always keep their kind of target explicit; everything else relies on defaults.
    return data


def save_config(
    config: Config,
    path: str | Path,
    *,
    include_secrets: bool = False,
    keep_layout: bool = True,
    expected: Config | None = None,
) -> dict[str, str]:
    """Write ``config`` as TOML (``.toml``) or JSON (``.json``); loading it back gives an equal Config.

    **Secrets are written as references.** A secret given by reference keeps its ``*_env`` name; an inline
    secret is written as a reference to :func:`secret_reference` (``ENATE_ROUTING_<CONNECTOR>_PASSWORD``),
    which the host must then set. Its value is written in clear only when ``include_secrets=True``.
    Returns the references written for inline secrets: variable name → what it holds (never the value).

    **An existing TOML file keeps its layout** (``keep_layout``, needs the ``toml-edit`` extra): only the
    values that changed are rewritten; comments, order, list style, a byte order mark and CRLF line ends
    stay. The file is replaced atomically, so a crash leaves the old or the new file, never half of one.

    **Pass ``expected``**, the configuration the file held when it was loaded or last saved, to refuse with
    ConcurrentEditError when the file no longer holds it: another process or a hand edit changed it since
    it was read, and saving would silently undo that change.
    """
    path = Path(path)
    json_file = path.suffix.lower() == ".json"
    existing = _existing_text(path) if expected is not None or (keep_layout and not json_file) else None
    if expected is not None and existing is not None:
        _require_unchanged(path, existing, expected)
    data = dump_config(config, include_secrets=include_secrets)
    references = {} if include_secrets else _inline_secrets_as_references(config, data)
    if json_file:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    elif keep_layout and existing is not None:
        text = _edited_toml(path, existing, config, data)
    else:
        text = to_toml(data)
    try:
        _replace_file(path, text.encode("utf-8"), private=include_secrets)  # bytes: line ends as the text has them
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError.single(f"cannot write the configuration ({reason})", file=str(path)) from None
    return references


def _replace_file(path: Path, data: bytes, *, private: bool) -> None:
    """Replace ``path`` atomically and durably. The new file keeps the old one's permissions (a file kept
    owner-only because it holds secrets stays so); a new file holding secrets is created owner-only. Each
    save has its own temporary name, so two processes saving at once never write into one file. A symbolic
    link stays: the file it points at is replaced."""
    path = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.saving")
    created = 0o600 if private or mode is not None else 0o666  # the umask applies to 0o666
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, created)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _existing_text(path: Path) -> str | None:
    """The file as it is now, line ends and byte order mark included; None when there is no file."""
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None  # nothing there to keep (writing says why it cannot write there)
    except (OSError, UnicodeDecodeError):
        raise ConfigError.single("cannot read the existing file to keep its layout", file=str(path)) from None


def _require_unchanged(path: Path, existing: str, expected: Config) -> None:
    try:
        current: Config | None = parse_config(_decode(existing, path.suffix.lower()))
    except ConfigError:
        current = None  # it does not even load now: certainly not what the edit started from
    if current == expected:
        return
    references_only = current is not None and not any(
        c.password is not None or c.certificate_password is not None for c in current.connectors)
    if references_only and current is not None and _as_references(current) == _as_references(expected):
        return  # the file holds references only: those saving `expected` wrote for its inline secrets
    raise ConcurrentEditError(
        f"{path}: the file changed since it was read (another admin or a hand edit); load it again and "
        "make the edit again"
    )


def _as_references(config: Config) -> dict[str, Any]:
    """``config`` as saving writes it without include_secrets: inline secrets as their references."""
    data = dump_config(config)
    _inline_secrets_as_references(config, data)
    return data


def secret_reference(connector: str, field: str) -> str:
    """The environment variable an inline secret is saved as: ``ENATE_ROUTING_<CONNECTOR>_<FIELD>``."""
    name = re.sub(r"[^A-Z0-9]+", "_", connector.upper()).strip("_") or "CONNECTOR"
    return f"ENATE_ROUTING_{name}_{field.upper()}"


def _inline_secrets_as_references(config: Config, data: dict[str, Any]) -> dict[str, str]:
    # Names that differ only in case or punctuation ("Sales EU", "Sales-EU") give the same variable; each
    # secret gets its own (``_2``, ``_3``...), so no connector ever logs in with another one's secret.
    taken = {c.password_env for c in config.connectors} | {c.certificate_password_env for c in config.connectors}
    written: dict[str, str] = {}
    for entry, connector in zip(data.get("connectors", []), config.connectors, strict=True):
        for field in ("password", "certificate_password"):
            if getattr(connector, field) is not None:
                base = name = secret_reference(connector.name, field)
                counter = 1
                while name in taken:
                    counter += 1
                    name = f"{base}_{counter}"
                taken.add(name)
                entry[f"{field}_env"] = name
                written[name] = f"connector {connector.name!r}: {field}"
    return written


def _edited_toml(path: Path, existing: str, config: Config, data: dict[str, Any]) -> str:
    from enate_routing import _toml_edit  # the one module importing the optional tomlkit

    # tomlkit edits LF text without a byte order mark; both are put back as the file had them.
    bom, crlf = existing.startswith("\ufeff"), "\r\n" in existing
    body = existing.removeprefix("\ufeff")
    body = body.replace("\r\n", "\n") if crlf else body
    try:
        old = parse_config(_decode(body, ".toml"))
    except ConfigError as exc:
        hint = ConfigIssue("the existing file does not load, so its layout cannot be kept; fix it, or save with "
                           "keep_layout=False to replace it", file=str(path))
        raise ConfigError([hint, *exc.with_file(str(path)).issues]) from None
    try:
        text = _toml_edit.update_toml(body, old, config, data)
    except ConfigError as exc:
        raise exc.with_file(str(path)) from None
    text = text.replace("\n", "\r\n") if crlf else text
    return "\ufeff" + text if bom else text


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file."""
    schema: dict[str, Any] = Config.model_json_schema(mode="validation")
    schema["title"] = "enate_routing configuration"
    return schema


# --- a TOML writer for the configuration's shape ---------------------------------------------------------
# The standard library reads TOML (tomllib) but cannot write it, and the runtime may depend only on pydantic
# and cryptography; the configuration's shape is small (arrays of tables, inline tables, scalars, arrays), so
# this writer covers exactly that. Round trips are proven by tests/test_loading.py.


def to_toml(data: Mapping[str, Any]) -> str:
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)}
    for key, value in data.items():
        if key not in tables and key not in arrays:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, rows in arrays.items():
        for row in rows:
            lines.append(f"\n[[{_key(key)}]]")
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in row.items())
    for key, table in tables.items():
        lines.append(f"\n[{_key(key)}]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items())
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: str) -> str:
    if key and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key):
        return key
    return _string(key)


def _string(text: str) -> str:
    # A JSON string is a valid TOML basic string: both escape '"', '\\' and C0 controls the same way. TOML
    # also forbids a raw DEL (U+007F), which JSON leaves alone (found by tests/config/test_roundtrip.py).
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
