"""Raw bytes → a frozen :class:`Envelope` of the facts routing needs (SPEC §3, §3.1, §3.1.1, §3.4, §3.5).

The envelope is parsed once; every address in it is already normalised (``patterns.normalize_address``),
so the routers only compare strings. The raw bytes stay the source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Envelope", "ParseLimits", "Recipient", "RecipientSource"]

RecipientSource = Literal["to", "cc", "delivered-to", "x-original-to", "envelope"]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits past which a message is quarantined instead of parsed (SPEC §3.1.1)."""

    max_message_bytes: int = 25 * 1024 * 1024
    max_header_bytes: int = 1024 * 1024
    max_mime_depth: int = 32
    max_mime_parts: int = 1000
    max_addresses_per_header: int = 1000
    max_encoded_words_per_header: int = 2000


@dataclass(frozen=True, slots=True)
class Recipient:
    """A normalised recipient address and the first header (or the envelope) it was seen in.

    Sources are ranked To, Cc, Delivered-To, X-Original-To, envelope; an address seen in several keeps
    the first of these.
    """

    address: str
    source: RecipientSource


@dataclass(frozen=True, slots=True)
class Envelope:
    """The routing facts of one email. Build it with :meth:`from_bytes`; tests may build it directly."""

    message_id: str | None = None
    sender: str | None = None
    sender_name: str = ""
    recipients: tuple[Recipient, ...] = ()
    subject: str = ""
    attachments: tuple[str, ...] = ()
    important: bool = False
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: str | None = None
    precedence: str | None = None
    x_autoreply: bool = False
    x_auto_response_suppress: str | None = None
    list_id: str | None = None
    return_path: str | None = None
    x_loop: tuple[str, ...] = ()
    is_delivery_report: bool = False
    size: int = 0
    defects: tuple[str, ...] = ()
    quarantine_reason: str | None = None
    raw: bytes = field(default=b"", repr=False)
