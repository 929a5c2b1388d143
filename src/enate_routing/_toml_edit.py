"""Saving into a hand-kept TOML file without rewriting it (the only module that imports ``tomlkit``).

Only what changed is touched: every value, comment, blank line, table order and list style the new
configuration does not contradict stays as the person wrote it. Objects are matched by identity
(connectors and outgoing routes by name, routes by connector and name, fallbacks by connector, blocked
entries by address); a field is rewritten only when its value differs, and a list written as a
``"a; b"`` string stays a string. Objects in a new order (a moved route) are written in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

from enate_routing.errors import ConfigError

try:
    import tomlkit
    from tomlkit.container import OutOfOrderTableProxy
    from tomlkit.exceptions import ParseError
    from tomlkit.items import AoT, InlineTable, Item, Table
except ImportError:  # the optional extra is not installed: update_toml says how to get it
    tomlkit = None  # type: ignore[assignment]  # None marks the missing optional module

__all__ = ["available", "update_toml"]

MISSING_MESSAGE = (
    "keeping the comments and layout of an existing TOML file needs tomlkit: pip install "
    "'enate-routing[toml-edit]' (or save to a new file, or pass keep_layout=False to rewrite it)"
)

# How each array of tables identifies its objects across versions.
_IDENTITY: dict[str, Callable[[Any], object]] = {
    "connectors": lambda m: m.name,
    "routes": lambda m: (m.connector, m.name),
    "fallbacks": lambda m: m.connector,
    "outgoing_routes": lambda m: m.name,
    "blocked": lambda m: m.address,
}
_SECRETS = frozenset({"password", "certificate_password", "password_env", "certificate_password_env"})
"""Secrets and their references: written exactly as the caller's data has them (see _update_secret)."""


def available() -> bool:
    return tomlkit is not None


def update_toml(text: str, old: BaseModel, new: BaseModel, data: Mapping[str, Any]) -> str:
    """``text`` (a TOML file that loads to ``old``) changed to hold ``new``; ``data`` is ``new`` dumped for
    writing (secrets already as the caller wants them). Raises ConfigError when tomlkit is missing."""
    if tomlkit is None:
        raise ConfigError.single(MISSING_MESSAGE)
    try:
        document = tomlkit.parse(text)
    except ParseError as exc:  # TOML that tomllib read but tomlkit cannot keep the layout of
        raise ConfigError.single(f"cannot keep the layout of this TOML ({exc}); save with keep_layout=False") from None
    for section, identity in _IDENTITY.items():
        _update_array(document, section, identity, getattr(old, section), getattr(new, section),
                      list(data.get(section, [])))
    _update_model(document, old, new, data, skip=set(_IDENTITY))
    return tomlkit.dumps(document)


def _update_array(document: Any, section: str, identity: Callable[[Any], object],
                  old_models: tuple[BaseModel, ...], new_models: tuple[BaseModel, ...],
                  new_data: list[dict[str, Any]]) -> None:
    existing = document.get(section)
    tables: list[Any] = list(existing) if isinstance(existing, AoT) else []
    # The file's tables are in the order the old configuration holds its objects (both are file order);
    # identities come from the validated models, so case or spacing differences in the file do not matter.
    pairs = list(zip(tables, old_models, strict=False))
    old_keys = _occurrences(identity, [m for _, m in pairs])
    by_key = dict(zip(old_keys, pairs, strict=True))
    new_order = _occurrences(identity, new_models)
    new_keys = set(new_order)
    result: list[Any] = []
    for position, (model, entry) in enumerate(zip(new_models, new_data, strict=True)):
        found = by_key.get(new_order[position])
        if found is None and len(pairs) == len(new_models) and old_keys[position] not in new_keys:
            found = pairs[position]  # a renamed object keeps its place: edit its table, comments and all
        if found is None:
            result.append(_new_table(entry))
        else:
            table, old_model = found
            _update_model(table, old_model, model, entry)
            result.append(table)
    if [id(t) for t in result] == [id(t) for t in tables]:
        return  # same objects in the same order: updated in place, layout untouched
    if not result:  # an emptied array in place would be written as `section = []` at the top of the file
        if section in document:
            del document[section]
        return
    kept, old_ids = {id(t) for t in result}, {id(t) for t in tables}
    if isinstance(existing, AoT) and ([id(t) for t in result if id(t) in old_ids]
                                      == [id(t) for t in tables if id(t) in kept]):
        # Objects added or deleted, none moved: edit the array in place so its spacing stays.
        for index in reversed(range(len(tables))):
            if id(tables[index]) not in kept:
                del existing[index]
        for index, table in enumerate(result):
            if id(table) not in old_ids:
                existing.insert(index, table)
        return
    array = tomlkit.aot()
    for table in result:
        array.append(table)
    document[section] = array


def _occurrences(identity: Callable[[Any], object], models: Any) -> list[tuple[object, int]]:
    """Each model's identity and how many earlier models share it: two ``[[blocked]]`` entries for one address
    (the first wins, docs/routing.md) stay two tables, the n-th of the old file matched with the n-th of the new."""
    seen: dict[object, int] = {}
    keys: list[tuple[object, int]] = []
    for model in models:
        key = identity(model)
        seen[key] = count = seen.get(key, -1) + 1
        keys.append((key, count))
    return keys


def _update_model(container: Any, old: BaseModel, new: BaseModel, data: Mapping[str, Any],
                  skip: set[str] | None = None) -> None:
    """Rewrite in ``container`` the fields whose value differs between ``old`` and ``new``."""
    for name in type(new).model_fields:
        if skip and name in skip:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if name in _SECRETS:
            _update_secret(container, name, data)
            continue
        if _same(before, after):
            continue
        if after is None or (name not in data and name in container and _is_empty(after)):
            if name in container:
                del container[name]
            continue
        current = container.get(name)
        if isinstance(after, BaseModel) and isinstance(before, BaseModel) and _is_table(current):
            _update_model(current, before, after, data.get(name, {}))
        elif isinstance(after, Mapping) and isinstance(before, Mapping) and _is_table(current):
            _update_mapping(current, dict(before), dict(after), data.get(name, {}))
        else:
            _set(container, name, _styled(data.get(name, _plain(after)), current))


def _is_table(item: Any) -> bool:
    """A table, written as ``[name]``, ``{ ... }`` or dotted keys (``incoming.host = ...``)."""
    return isinstance(item, Table | InlineTable | OutOfOrderTableProxy)


def _update_secret(container: Any, name: str, data: Mapping[str, Any]) -> None:
    # Secrets and references are written exactly as the caller decided (a reference, or the value when asked
    # explicitly): an inline secret saved as a reference has no ``password_env`` in the model, only in ``data``.
    if name in data:
        if container.get(name) is None or str(container.get(name)) != str(data[name]):
            _set(container, name, data[name])
    elif name in container:
        del container[name]


def _update_mapping(container: Any, before: dict[str, Any], after: dict[str, Any], data: Mapping[str, Any]) -> None:
    """A table of free keys (``[companies]``): keys compare as validated, so an unchanged entry stays as written."""
    for key in [k for k in container if str(k).strip() not in after]:
        del container[key]
    for key, value in after.items():
        if key in before and _same(before[key], value) and key in container:
            continue
        _set(container, key, _styled(data.get(key, _plain(value)), container.get(key)))


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, SecretStr) or isinstance(after, SecretStr):
        plain = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in (before, after)]
        return plain[0] == plain[1]
    return bool(before == after)


def _is_empty(value: Any) -> bool:
    return value in ((), [], {}, None)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _styled(value: Any, current: Item | None) -> Any:
    """``value`` written the way the file wrote this field before: a ``"a; b"`` string stays a string."""
    if isinstance(value, list) and current is not None and isinstance(current.unwrap(), str):
        dotted = current.unwrap().lstrip().startswith(".")
        return "; ".join(f".{v}" if dotted and not str(v).startswith(".") else str(v) for v in value)
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        table.update({k: v for k, v in value.items() if v is not None})
        return table
    return value


def _set(container: Any, key: str, value: Any) -> None:
    """Set ``key``; a new key goes after the table's last value, before the comments and blank lines that
    introduce the next table (tomlkit keeps those at the end of the previous table's body)."""
    if key in container or not isinstance(container, Table):
        container[key] = value
        return
    body = container.value.body
    trailing: list[Any] = []
    while body and body[-1][0] is None:  # comments and whitespace have no key
        trailing.insert(0, body.pop())
    container[key] = value
    body.extend(trailing)


def _new_table(entry: Mapping[str, Any]) -> Any:
    """A new object, written by the same writer as a new file (so it looks like its neighbours)."""
    from enate_routing._loading import to_toml  # loading imports this module lazily: no import cycle

    table = tomlkit.parse(to_toml({"entry": [dict(entry)]}))["entry"][0]
    table.add(tomlkit.nl())
    return table
