"""Frozen slotted dataclasses built without ``object.__setattr__``, for value objects made on hot paths.

The envelope builds one :class:`~enate_routing._envelope.Envelope` (21 fields) and a ``Recipient`` per address
for every email, the router a ``Decision`` per route taken: the generated ``__init__`` of a frozen dataclass
sets each field through ``object.__setattr__``, about three times slower than the slot's own descriptor.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

__all__ = ["direct_init"]

_Frozen = TypeVar("_Frozen", bound=type)


def direct_init(cls: _Frozen) -> _Frozen:
    """Give a frozen slotted dataclass an ``__init__`` that sets each slot through its member descriptor.

    Same signature and result as the generated one. Defaults must be immutable values (no factories).
    Generated like the dataclass's own ``__init__``. Also sets ``_make``: the same with every field
    positional and required, for hot paths where matching many keyword arguments costs as much as setting
    them (the class declares it as a ``ClassVar`` for type checkers).
    """
    namespace: dict[str, Any] = {}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for field in fields(cls):
        if field.default_factory is not MISSING:
            raise TypeError(f"{cls.__qualname__}.{field.name}: direct_init takes no default factories")
        namespace[f"_set_{field.name}"] = cls.__dict__[field.name].__set__
        parameter = field.name
        if field.default is not MISSING:
            namespace[f"_default_{field.name}"] = field.default
            parameter += f"=_default_{field.name}"
        (keyword if field.kw_only else positional).append(parameter)
        body.append(f"    _set_{field.name}(self, {field.name})")
    parameters = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    names = ", ".join(field.name for field in fields(cls))
    namespace["_new"], namespace["_cls"] = object.__new__, cls
    source = (f"def __init__({parameters}):\n" + "\n".join(body or ["    pass"])
              + f"\ndef _make({names}):\n    self = _new(_cls)\n" + "\n".join(body) + "\n    return self")
    exec(source, namespace)  # noqa: S102  # source built above from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010  # mypy rejects assigning a method; the signature is unchanged
    setattr(cls, "_make", staticmethod(namespace["_make"]))  # noqa: B010  # a ClassVar the class declares
    return cls
