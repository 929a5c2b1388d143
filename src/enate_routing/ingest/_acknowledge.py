"""Acknowledgements (docs/semantics.md §3.2, §3.5): who sends them, the one rate-limit decision, the builder.

The rate limit is decided once, while routing: :class:`AckRateLimit` is the ``acknowledgement_allowed``
callback the router asks (the ledger's count over the last hour plus what this batch already planned).
What routing decided is recorded with the work item and never re-checked at sending time.

Header values taken from the incoming mail (its Subject above all) are sanitised before any header is
written: a decoded Subject may hold CR, LF, NUL, form feed, U+2028 or lone surrogates, and an
acknowledgement that cannot be built or sent is recorded with its reason and skipped — it never blocks
the mailbox.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate

from enate_routing._ack_template import DEFAULT_SUBJECT_TOKEN, AckTemplate, token_links
from enate_routing._decision import Decision
from enate_routing._envelope import Envelope
from enate_routing._model import Config, Connector
from enate_routing._patterns import header_address, needs_smtputf8
from enate_routing.errors import TransportError
from enate_routing.ingest._ledger import AckState, WorkRecord
from enate_routing.transports._base import MailSender

__all__ = [
    "AckBuilder",
    "AckContent",
    "AckOutcome",
    "AckRateLimit",
    "AckRoute",
    "AckWording",
    "Acknowledger",
    "build_acknowledgement",
    "fixed_ack_route",
    "header_value",
    "render_acknowledgement",
    "sending_connector",
]

_log = logging.getLogger("enate_routing.ingest")

AckBuilder = Callable[..., EmailMessage]
"""Builds an acknowledgement: ``(envelope, decision, from_address, recipients) -> EmailMessage``; a builder
that also takes the keyword ``content`` gets the rendered :class:`AckContent` (subject with the reference
token, text from the route's template)."""

# C0 controls (CR, LF, NUL, form feed, tab...), DEL, C1 controls (NEL), the Unicode line and paragraph
# separators and lone surrogates: none may reach a header line (RFC 5322 §2.2, §3.2.5).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_MAX_SUBJECT = 200


def header_value(text: str, limit: int = 998) -> str:
    """``text`` safe for one header line: unsafe characters become one space, runs of space collapse."""
    return " ".join(_UNSAFE.sub(" ", text).split())[:limit]


@dataclass(frozen=True, slots=True)
class AckContent:
    """An acknowledgement's subject and text, rendered from its template after the hand-off."""

    subject: str
    text: str


def render_acknowledgement(
    envelope: Envelope, decision: Decision, template: AckTemplate | None = None, reference: str | None = None,
    token: str | None = DEFAULT_SUBJECT_TOKEN,
) -> AckContent:
    """Fill ``template`` (default: :class:`AckTemplate`) with sanitised values; with a ``reference``, the
    subject carries ``token`` filled with it (appended unless the template already wrote it), so a reply
    keeping the subject links to the work item (docs/semantics.md §3.4)."""
    template = template or AckTemplate()
    reference = header_value(reference or "", 200) or None
    values = {
        "reference": reference or "",
        "subject": header_value(envelope.subject or "", _MAX_SUBJECT),
        "route": header_value(decision.route or ""),
        "sender": header_value(envelope.sender or ""),
    }
    subject = header_value(template.subject.format(**values), 2 * _MAX_SUBJECT)
    if subject[:7].casefold() == "re: re:":
        subject = subject[4:]  # the original was a reply already: one "Re:" is enough
    if reference and token:
        filled = header_value(token.format(ref=reference))
        if filled not in subject:
            subject = f"{subject} {filled}".strip()
    return AckContent(subject, template.text_for(reference).format(**values))


def build_acknowledgement(
    envelope: Envelope, decision: Decision, from_address: str, recipients: Sequence[str],
    content: AckContent | None = None,
) -> EmailMessage:
    """The default acknowledgement (RFC 3834): a short auto-reply that threads under the original.

    ``content`` is the rendered subject and text (default: the default template, no reference). Its
    Message-ID is derived from the idempotency key, so a resend after a crash (the SMTP window) carries
    the same id and mail clients show it once. Every value from the incoming mail is sanitised first.
    """
    content = content or render_acknowledgement(envelope, decision)
    # A UTF-8 address is written as UTF-8 (RFC 6532); the SMTP sender then asks for SMTPUTF8 (RFC 6531).
    international = needs_smtputf8(from_address, recipients)
    msg = EmailMessage(policy=_UTF8_HEADERS if international else _HEADERS)
    msg["From"] = header_address(header_value(from_address))
    msg["To"] = ", ".join(header_address(header_value(r)) for r in recipients)
    _set_text(msg, "Subject", header_value(content.subject))
    msg["Date"] = formatdate(localtime=False)
    domain = header_value(from_address.rpartition("@")[2]) or "localhost"
    msg["Message-ID"] = f"<ack-{decision.idempotency_key}@{domain}>"
    if envelope.message_id:
        original = f"<{header_value(envelope.message_id).strip('<>')}>"
        chain = [f"<{header_value(r).strip('<>')}>" for r in envelope.references[-10:]]
        if international or original.isascii():  # a UTF-8 id (RFC 6532) only where headers are UTF-8
            _set_ids(msg, "In-Reply-To", [original])
            _set_ids(msg, "References", [i for i in [*chain, original] if international or i.isascii()])
    # RFC 3834 §5: this is an automatic response; Microsoft servers honour X-Auto-Response-Suppress.
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    # The loop mark auto-responders leave (procmail, helpdesks): mail coming back with it is not answered.
    msg["X-Loop"] = header_value(from_address)
    msg.set_content(content.text)
    return msg


# Values set raw (below) are written as given, folded by us: the email package refolds a long one by parsing
# it again, which decodes whatever looks like an encoded word — the very thing raw setting avoids.
_HEADERS = policy.default.clone(refold_source="none")
_UTF8_HEADERS = policy.SMTPUTF8.clone(refold_source="none")


def _set_ids(msg: EmailMessage, name: str, ids: list[str]) -> None:
    """Set In-Reply-To / References to these message ids as written, folded between ids. Parsed, an id that
    looks like an encoded word (``<=?utf-7?q?+2AA-?=@x>``) is decoded, and the package then fails to write it."""
    msg.set_raw(name, "\n ".join(textwrap.wrap(" ".join(ids), 76, break_long_words=False, break_on_hyphens=False)))


def _set_text(msg: EmailMessage, name: str, text: str) -> None:
    """Set the unstructured header ``name`` so that it reads back as ``text``. The email package decodes
    whatever looks like an RFC 2047 encoded word in a value it is given (a subject quoting ``=?x?q?abc?=``
    would lose it), and fails to write some (``UnicodeEncodeError`` for a made-up charset): such text is
    written as encoded words of its own, which a reader decodes once, back to ``text``."""
    if "=?" in text:
        msg.set_raw(name, Header(text, "utf-8", header_name=name).encode())
    else:
        msg[name] = text


def _outgoing_route_connector(config: Config, address: str) -> Connector | None:
    wanted = address.casefold()
    for route in config.outgoing_routes:
        if route.enabled and route.address.casefold() == wanted:
            with contextlib.suppress(KeyError):
                return config.connector(route.connector)
    return None


def sending_connector(config: Config, connector: Connector, address: str | None = None) -> Connector | None:
    """Which connector sends ``connector``'s acknowledgements from ``address`` (docs/semantics.md §3.2).

    ``address`` is the "from" address (one of the connector's own addresses; default: its primary
    address). In this order: the connector named by an enabled outgoing route for ``address``; else the
    connector itself when it is used for outgoing mail too; else the choice for the connector's primary
    address (an enabled outgoing route for it); else none (acknowledgements are then recorded as
    ``no-sender``). The chosen connector must also be enabled to send.
    """
    primary = connector.primary_address
    wanted = address if address is not None and address.casefold() != primary.casefold() else primary
    chosen = _outgoing_route_connector(config, wanted)
    if chosen is not None:
        return chosen
    if connector.uses_outgoing and connector.outgoing is not None:
        return connector
    return _outgoing_route_connector(config, primary)


@dataclass(frozen=True, slots=True)
class AckRoute:
    """How the acknowledgements of a decision's address go out.

    ``from_address`` is both the From header and the SMTP envelope sender; ``connector`` names the sending
    connector (senders are opened once per connector and reused); ``factory`` opens it — None when no
    enabled connector can send (the acknowledgement is then recorded as ``no-sender``).
    """

    from_address: str
    connector: str = ""
    factory: Callable[[], MailSender] | None = None


def fixed_ack_route(factory: Callable[[], MailSender] | None, from_address: str | None) -> Callable[[str], AckRoute]:
    """Every acknowledgement through one sender, from the decision's address (or ``from_address``)."""

    def route(address: str) -> AckRoute:
        return AckRoute(address if "@" in address else (from_address or address), "", factory)

    return route


class AckRateLimit:
    """The one rate-limit decision (docs/semantics.md §3.5): at most ``per_hour`` acknowledgements per
    recipient over a sliding hour — the ledger's count plus what the current batch already planned."""

    def __init__(self, count: Callable[[str, float], int], per_hour: int, clock: Callable[[], float]) -> None:
        self._count = count
        self.per_hour = per_hour
        self._clock = clock
        self._planned: dict[str, int] = {}

    def window_start(self) -> float:
        """The start of the sliding hour (epoch seconds): older acknowledgements no longer count."""
        return self._clock() - 3600.0

    def __call__(self, recipient: str) -> bool:
        key = recipient.casefold()
        used = self._count(key, self.window_start()) + self._planned.get(key, 0)
        if used >= self.per_hour:
            return False
        self._planned[key] = self._planned.get(key, 0) + 1
        return True

    def batch_recorded(self) -> None:
        """The batch's plans are in the ledger now (as pending acknowledgements): forget them here."""
        self._planned.clear()


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """What became of one acknowledgement: its state, the recipients, and why it was not sent."""

    state: AckState
    recipients: tuple[str, ...]
    reason: str | None = None


def describe(exc: BaseException) -> str:
    """An exception as one short line for the ledger and the log (never a secret: messages are built so)."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _takes_content(builder: AckBuilder) -> bool:
    try:
        return "content" in inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builtin or an odd callable: call it the original way
        return False


@dataclass(frozen=True, slots=True)
class AckWording:
    """How acknowledgements are worded: the template per decision, and the reference token with the
    ``subject_pattern`` it must satisfy (``[linking]``, docs/configuration.md)."""

    templates: Callable[[Decision], AckTemplate] = lambda decision: AckTemplate()
    token: str | None = DEFAULT_SUBJECT_TOKEN
    pattern: str | None = None


class Acknowledger:
    """Builds and sends acknowledgements through one sender per sending connector, opened on first use."""

    def __init__(self, routes: Callable[[str], AckRoute], builder: AckBuilder, max_attempts: int,
                 wording: AckWording | None = None) -> None:
        self.routes = routes
        self.builder = builder
        self.max_attempts = max_attempts
        self.wording = wording or AckWording()
        self._with_content = _takes_content(builder)
        self._senders: dict[str, MailSender] = {}

    def _build(self, envelope: Envelope, decision: Decision, from_address: str, item: WorkRecord,
               reference: str | None) -> bytes:
        if not self._with_content:
            return self.builder(envelope, decision, from_address, item.ack_recipients).as_bytes()
        wording = self.wording
        if reference and wording.token and wording.pattern and not token_links(wording.token, reference,
                                                                              wording.pattern):
            _log.warning("reference does not match subject_pattern; a reply will not link by subject",
                         extra={"key": item.key, "reference": reference})
        content = render_acknowledgement(envelope, decision, wording.templates(decision), reference, wording.token)
        return self.builder(envelope, decision, from_address, item.ack_recipients, content=content).as_bytes()

    def send(self, envelope: Envelope, decision: Decision, item: WorkRecord,
             reference: str | None = None) -> AckOutcome:
        """Build (with the work item's ``reference`` the handler returned) and send one acknowledgement."""
        recipients = item.ack_recipients
        route = self.routes(decision.address)
        if route.factory is None:
            return AckOutcome(AckState.NO_SENDER, recipients, "no enabled connector sends for this address")
        try:
            message = self._build(envelope, decision, route.from_address, item, reference)
        except Exception as exc:  # noqa: BLE001 — a message we cannot answer must not stall the mailbox
            reason = f"acknowledgement could not be built: {describe(exc)}"
            _log.warning("acknowledgement skipped", extra={"key": item.key, "reason": reason})
            return AckOutcome(AckState.FAILED, recipients, reason)
        try:
            sender = self._senders.get(route.connector)
            if sender is None:
                sender = self._senders[route.connector] = route.factory()
            # The envelope sender is the From address (some relays refuse the null reverse path).
            sender.send(route.from_address, list(recipients), message)
        except TransportError as exc:
            self.close(route.connector)
            if exc.retryable and item.attempts + 1 < self.max_attempts:
                _log.info("acknowledgement deferred", extra={"key": item.key, "reason": describe(exc)})
                return AckOutcome(AckState.PENDING, recipients, describe(exc))
            reason = f"acknowledgement not sent: {describe(exc)}"
            _log.warning("acknowledgement failed", extra={"key": item.key, "reason": reason})
            return AckOutcome(AckState.FAILED, recipients, reason)
        return AckOutcome(AckState.SENT, recipients)

    def close(self, connector: str | None = None) -> None:
        """Close the sender of ``connector`` (after a failure), or every open sender."""
        for name in list(self._senders) if connector is None else [connector]:
            sender = self._senders.pop(name, None)
            if sender is not None:
                with contextlib.suppress(TransportError, OSError):
                    sender.close()
