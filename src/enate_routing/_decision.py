"""What routing decided, and why (docs/semantics.md §4): plain frozen value objects built on the hot path.

A :class:`Decision` is a slotted frozen dataclass, not a pydantic model: the router builds one or more per
email, and validation has already happened when the configuration was loaded. A :class:`RoutingResult`
holds the decisions of one email; :class:`Trace` is what ``Router.explain`` returns — the same run as
``Router.route`` with the matcher recording, for every route considered in order, which rule held or failed.

The idempotency key scheme (docs/semantics.md §4) lives here so that the compiled router and the reference router in
``enate_routing.testing`` cannot disagree about it; see :func:`idempotency_key`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from enate_routing._delivery import Delivery
from enate_routing._frozen import direct_init as _direct_init

__all__ = [
    "Action",
    "AddressTrace",
    "ConnectorKeys",
    "Decision",
    "RouteCheck",
    "RoutingResult",
    "RuleCheck",
    "Trace",
    "idempotency_key",
    "message_reference",
    "visible",
]

Action = Literal["create", "link", "ignore", "reject"]

# The scope of a decision that a message yields at most once per connector, whichever address brought it:
# Bcc deliveries, wildcard and fallback decisions, links, ignores and rejects (semantics.md §3.1 step 2, last line).
MAILBOX_SCOPE = "mailbox"
_KEY_VERSION = "enate-routing/1"


def message_reference(message_id: str | None, raw: bytes, digest: str | None = None) -> str:
    """``id:<message id>``, or ``sha256:<digest of the raw bytes>`` when the message has no id (semantics.md §4).

    ``digest`` is the SHA-256 hex digest of ``raw`` when the caller already has it (the ingestion ledger).
    """
    if message_id:
        return f"id:{message_id}"
    return "sha256:" + (digest or hashlib.sha256(raw).hexdigest())


def idempotency_key(connector: str, reference: str, scope: str) -> str:
    """The key a host uses to create work exactly once (semantics.md §4): stable across retries of the same message.

    ``sha256("enate-routing/1" NUL connector NUL reference NUL scope)``, hex, first 32 digits (128 bits).
    ``reference`` comes from :func:`message_reference`; ``scope`` is the To/Cc address a decision was made
    for, or ``"mailbox"`` for the decisions a message yields once per connector (Bcc, wildcard, fallback,
    link, ignore, reject) — so two Bcc'd copies of one message get one key (docs/semantics.md §3.1 step 2).
    """
    return ConnectorKeys(connector).key(reference, scope)


class ConnectorKeys:
    """:func:`idempotency_key` for one connector, as the router makes a key for every decision.

    The connector's part of the hashed text never changes, so its SHA-256 state is computed once and each key
    copies it and hashes only ``reference NUL scope``. OpenSSL's copy costs less than its set-up of a new hash,
    and it hashes with the CPU's SHA extensions: 1–2% less per routed message than hashing the whole text with
    CPython's own SHA-256 module (A/B in one process, 10 and 10,000 routes; docs/routing.md). UTF-8 encodes
    code point by code point, so the two parts encoded apart are the whole text encoded:
    tests/router/test_hot_path.py checks the documented formula. A method, not ``__call__``: CPython calls
    an instance through its type's slot, a second interpreter frame in C; a method call stays in one loop.
    """

    __slots__ = ("_prefix",)

    def __init__(self, connector: str) -> None:
        self._prefix = hashlib.sha256(f"{_KEY_VERSION}\0{connector}\0".encode("utf-8", "surrogatepass"))

    def key(self, reference: str, scope: str) -> str:
        state = self._prefix.copy()
        state.update(f"{reference}\0{scope}".encode("utf-8", "surrogatepass"))
        return state.hexdigest()[:32]


@_direct_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One thing to do with an email (docs/semantics.md §4).

    ``create`` names the route and carries its :class:`~enate_routing._delivery.Delivery` (target, category,
    flags) and the acknowledgement recipients; ``link`` names the existing work item in ``link``; ``ignore``
    and ``reject`` say why in ``reason``. ``suppressed`` says why no acknowledgement is sent although the
    route sends automated emails (docs/semantics.md §3.5).
    """

    connector: str
    action: Action
    address: str
    idempotency_key: str
    route: str | None = None
    fallback: bool = False
    delivery: Delivery | None = None
    acknowledge: tuple[str, ...] = ()
    suppressed: str | None = None
    link: str | None = None
    reason: str | None = None

    # Every field, positional, in the order above (set by direct_init; the router's hot path).
    _make: ClassVar[Callable[[str, Action, str, str, str | None, bool, Delivery | None, tuple[str, ...], str | None,
                              str | None, str | None], Decision]]

    def to_json(self, message: str | None = None) -> dict[str, Any]:
        """Exactly the fields of docs/semantics.md §5, in that order; ``message`` names the email (a path, an id)."""
        delivery = _NO_DELIVERY if self.delivery is None else self.delivery.to_json()
        return {
            "message": message,
            "connector": self.connector,
            "action": self.action,
            "address": self.address,
            "route": self.route,
            "fallback": self.fallback,
            **delivery,
            "acknowledge": list(self.acknowledge),
            "suppressed": self.suppressed,
            "link": self.link,
            "idempotency_key": self.idempotency_key,
        }


_NO_DELIVERY: dict[str, Any] = {"target": None, "ticket_category": None, "send_automated_emails": False,
                                "test_mode": False}


@_direct_init
@dataclass(frozen=True, slots=True)
class RoutingResult:
    """The decisions for one email through one connector, in order (docs/semantics.md §4)."""

    connector: str
    message_id: str | None
    decisions: tuple[Decision, ...]

    _make: ClassVar[Callable[[str, str | None, tuple[Decision, ...]], RoutingResult]]  # set by direct_init

    def to_json(self, message: str | None = None) -> list[dict[str, Any]]:
        """One docs/semantics.md §5 object per decision; ``message`` defaults to the message id."""
        name = self.message_id if message is None else message
        return [decision.to_json(name) for decision in self.decisions]

    def __iter__(self) -> Any:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule of one route: whether it held for this email, and why, in words."""

    rule: str
    held: bool
    why: str


@dataclass(frozen=True, slots=True)
class RouteCheck:
    """One route considered, in priority order (1 = first route of its connector in the file)."""

    route: str
    priority: int
    enabled: bool
    held: bool
    rules: tuple[RuleCheck, ...]


@dataclass(frozen=True, slots=True)
class AddressTrace:
    """The routes considered for one address of the connector (``*`` for the wildcard tier)."""

    address: str
    source: str
    routes: tuple[RouteCheck, ...]
    chosen: str | None


@dataclass(frozen=True, slots=True)
class Trace:
    """Why an email was routed as it was (docs/semantics.md §4): the steps taken and every route considered in order.

    Produced by the very run that produced ``result`` (``Router.explain``), so it cannot disagree with it.
    """

    connector: str
    message_id: str | None
    steps: tuple[str, ...]
    addresses: tuple[AddressTrace, ...]
    result: RoutingResult

    def format(self) -> str:
        """A person-readable, multi-line account of the run."""
        lines = [f"connector {self.connector!r}, message {self.message_id or '(no Message-ID)'}"]
        lines.extend(f"- {step}" for step in self.steps)
        for group in self.addresses:
            label = "wildcard routes" if group.address == "*" else f"address {group.address} ({group.source})"
            lines.append(f"{label}:")
            if not group.routes:
                lines.append("    no routes")
            for check in group.routes:
                if not check.enabled:
                    lines.append(f"    #{check.priority} {check.route!r}: skipped (disabled)")
                    continue
                verdict = "HOLDS" if check.held else "fails"
                lines.append(f"    #{check.priority} {check.route!r}: {verdict}")
                lines.extend(
                    f"        {'✓' if rule.held else '✗'} {rule.rule}: {rule.why}" for rule in check.rules
                )
                if not check.rules:
                    lines.append("        ✓ no rules: holds for every email")
            lines.append(f"    → {'route ' + repr(group.chosen) if group.chosen else 'no route held'}")
        lines.append("decisions:")
        for decision in self.result.decisions:
            lines.append("    " + describe(decision))
        return visible("\n".join(lines))


# Every C0 and C1 control but the line break, written as \xNN: text from mail (a Message-ID, an address) must
# not drive the terminal it is shown on — an ESC there starts an escape sequence (OSC 52 writes the clipboard).
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if code != 0x0A}


def visible(text: str) -> str:
    """``text`` for a person's terminal: control characters but the line break written as ``\\xNN``."""
    return text.translate(_CONTROLS)


def describe(decision: Decision) -> str:
    """One line for a decision, for people (the CLI's explain and demo)."""
    if decision.action == "create":
        text = f"create via {'fallback ' if decision.fallback else 'route '}{decision.route!r} for {decision.address}"
        if decision.delivery is not None:
            text += f": {decision.delivery.target}"
            if decision.delivery.ticket_category:
                text += f" [{decision.delivery.ticket_category}]"
        if decision.acknowledge:
            text += f"; acknowledge {', '.join(decision.acknowledge)}"
        elif decision.suppressed:
            text += f"; no acknowledgement ({decision.suppressed})"
    elif decision.action == "link":
        text = f"link to {decision.link} ({decision.reason})"
    else:
        text = f"{decision.action} ({decision.reason})"
    return f"{text}; key {decision.idempotency_key}"
