"""Frozen slotted dataclasses built without ``object.__setattr__``, for value objects made on hot paths.

The envelope builds one :class:`~enate_routing._envelope.Envelope` (21 fields) and a ``Recipient`` per address
for every email, the router a ``Decision`` per route taken. The generated ``__init__`` of a frozen dataclass
sets each field through ``object.__setattr__``; even a slot's own descriptor ``__set__`` is a method-wrapper
called through a fresh argument tuple, about 600 machine instructions per field. :func:`direct_init` builds
the object as a private subclass that keeps ``object``'s attribute setting — plain stores, which CPython
writes straight into the slot — then gives it its real class: allowed, as the subclass adds no slots and so
has the same layout. The object is frozen before anyone else can see it. Two thirds of the cost of a
``Decision`` (benchmarks/bench_instructions.py), 3.5% of an average parse of the corpus.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

__all__ = ["direct_init"]

_Frozen = TypeVar("_Frozen", bound=type)


def direct_init(cls: _Frozen) -> _Frozen:
    """Give a frozen slotted dataclass an ``__init__`` that builds it unfrozen (module docstring).

    Same signature and result as the generated one; an instance of a subclass, which may add slots, is set
    through each slot's descriptor instead. Defaults must be immutable values (no factories). Also sets
    ``_make``: the same with every field positional and required, for hot paths where matching many keyword
    arguments costs as much as setting them (the class declares it as a ``ClassVar`` for type checkers).
    tests/router/test_hot_path.py compares both with the keyword constructor.
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
        body.append(f"        _set_{field.name}(self, {field.name})")
        stores.append(f"    self.{field.name} = {field.name}")
    parameters = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    names = ", ".join(field.name for field in fields(cls))
    namespace.update(_new=object.__new__, _cls=cls, _unfrozen=_unfrozen(cls), _set_class=object.__setattr__)
    initializer = [f"def __init__({parameters}):",
                   "    if type(self) is _cls:",
                   "        _set_class(self, '__class__', _unfrozen)",
                   *(f"    {store}" for store in stores),
                   "        self.__class__ = _cls",
                   "    else:  # a subclass may add slots: set each field through its descriptor",
                   *(body or ["        pass"])]
    make = [f"def _make({names}):", "    self = _new(_unfrozen)", *stores, "    self.__class__ = _cls",
            "    return self"]
    source = "\n".join([*initializer, *make])
    exec(source, namespace)  # noqa: S102  # source built above from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010  # mypy rejects assigning a method; the signature is unchanged
    setattr(cls, "_make", staticmethod(namespace["_make"]))  # noqa: B010  # a ClassVar the class declares
    return cls


def _unfrozen(cls: type) -> type:
    """A subclass of ``cls`` with the same slots and ``object``'s own attribute setting and deleting.

    Both: CPython keeps them in one type slot, so a class that keeps either frozen method from ``cls`` sends
    every attribute store through Python again (measured: slower than the descriptors).
    """
    return type(cls.__name__, (cls,), {
        "__slots__": (),
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}._unfrozen",
    })
