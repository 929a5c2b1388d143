"""The limits past which a message is quarantined instead of parsed (docs/semantics.md §3.1.1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParseLimits"]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Limits past which a message is quarantined instead of parsed (docs/semantics.md §3.1.1)."""

    max_message_bytes: int = 25 * 1024 * 1024
    max_header_bytes: int = 1024 * 1024
    max_mime_depth: int = 32
    max_mime_parts: int = 1000
    max_addresses_per_header: int = 1000
    max_encoded_words_per_header: int = 2000
    max_ids_per_header: int = 1000
