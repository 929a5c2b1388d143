"""A base for the library's objects that hold a connection: ``with`` closes them, as it does files and sockets."""

from __future__ import annotations

from typing import Self

__all__ = ["ClosedOnExit"]


class ClosedOnExit:
    """``with obj:`` returns ``obj`` and calls ``obj.close()`` when the block ends, however it ends."""

    __slots__ = ()

    def close(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
