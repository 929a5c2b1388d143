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
    positional and required, for hot paths (the class declares it as a ``ClassVar`` for type checkers).

    ``_make`` is cheaper still. A slot's descriptor ``__set__`` is a method-wrapper, called through a fresh
    argument tuple: about 600 machine instructions per field, two thirds of the router's cost of a
    ``Decision`` (benchmarks/bench_instructions.py). ``_make`` instead builds the object as a private subclass
    that has ``object``'s own ``__setattr__`` — plain attribute stores, which CPython writes straight into
    the slot — and then gives it its real class (allowed: the subclass adds no slots, so the layout is
    the same). The object is frozen before anyone else sees it; tests/router/test_hot_path.py compares both.
    """
    namespace: dict[str, Any] = {}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    stores: list[str] = []
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
        stores.append(f"    self.{field.name} = {field.name}")
    parameters = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    names = ", ".join(field.name for field in fields(cls))
    namespace["_new"], namespace["_cls"], namespace["_unfrozen"] = object.__new__, cls, _unfrozen(cls)
    source = (f"def __init__({parameters}):\n" + "\n".join(body or ["    pass"])
              + f"\ndef _make({names}):\n    self = _new(_unfrozen)\n" + "\n".join(stores)
              + "\n    self.__class__ = _cls\n    return self")
    exec(source, namespace)  # noqa: S102  # source built above from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010  # mypy rejects assigning a method; the signature is unchanged
    setattr(cls, "_make", staticmethod(namespace["_make"]))  # noqa: B010  # a ClassVar the class declares
    return cls


def _unfrozen(cls: type) -> type:
    """A subclass of ``cls`` with the same slots and ``object``'s attribute setting (both halves of the slot:
    a class that keeps either of the frozen ``__setattr__`` / ``__delattr__`` sets every attribute through it)."""
    return type(cls.__name__, (cls,), {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}._unfrozen",
    })
