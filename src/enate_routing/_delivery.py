"""What a route delivers (docs/semantics.md §3, §4): one Target type and one Delivery value object.

A route's delivery data — the work item it creates and how — is written out once, here, and shared by the
configuration (:class:`~enate_routing._model.IncomingRoute` validates a :class:`Target` in place), the compiled
routes, every :class:`~enate_routing._decision.Decision` and every admin grid row. Both classes are
keyword-only frozen slotted dataclasses: no positional field order to get wrong, cheap to build and to share
(equal deliveries of many routes can be one object).

:class:`Target` is a standard-library dataclass that pydantic validates where the configuration names it
(``__pydantic_config__`` forbids unknown fields, ``Text`` strips and requires text), so the validated target
*is* the runtime target: there is no second twin to convert into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, StringConstraints

__all__ = ["Delivery", "Target", "Text", "WorkItemKind"]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""Non-empty text, surrounding whitespace ignored (names, hosts, targets). Secrets are never stripped."""

WorkItemKind = Literal["ticket", "case"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The work item a route creates: a Ticket or Case of a customer / contract / service / process."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    customer: Text
    contract: Text
    service: Text
    process: Text
    kind: WorkItemKind

    def to_json(self) -> dict[str, str]:
        return {
            "customer": self.customer,
            "contract": self.contract,
            "service": self.service,
            "process": self.process,
            "kind": self.kind,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.customer} / {self.contract} / {self.service} / {self.process}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What a ``create`` decision hands the host (docs/semantics.md §4): the target and how to create it."""

    target: Target
    ticket_category: str | None = None
    send_automated_emails: bool = False
    test_mode: bool = False
    for_attention: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The delivery fields of docs/semantics.md §5, in that order (``for_attention`` is not among them)."""
        return {
            "target": self.target.to_json(),
            "ticket_category": self.ticket_category,
            "send_automated_emails": self.send_automated_emails,
            "test_mode": self.test_mode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery | None:
        """The inverse of :meth:`to_json` plus ``for_attention``; None when ``data`` has no target (not a create)."""
        target = data.get("target")
        if not isinstance(target, dict):
            return None
        return cls(
            target=Target(**target),
            ticket_category=data.get("ticket_category"),
            send_automated_emails=bool(data.get("send_automated_emails")),
            test_mode=bool(data.get("test_mode")),
            for_attention=data.get("for_attention"),
        )
