"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3; RFC 9051 keeps it without UTF8=ACCEPT).

Printable US-ASCII (0x20-0x7E) stands for itself, except ``&``, which is written ``&-``. Any other run of
characters is UTF-16BE, base64-encoded with ``,`` instead of ``/`` and no ``=`` padding, between ``&``
and ``-``: ``Entwürfe`` -> ``Entw&APw-rfe``. ``imaplib`` does none of this (mailservers.md §8.11), and
Dovecot 2.3 does not offer ``UTF8=ACCEPT``, so names are always encoded.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode_mailbox", "encode_mailbox", "quote_mailbox"]


def _b64(run: str) -> str:
    raw = run.encode("utf-16-be")
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode_mailbox(name: str) -> str:
    """``name`` in modified UTF-7 (pure ASCII)."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append("&" + _b64("".join(pending)) + "-")
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append("&" + _b64("".join(pending)) + "-")
    return "".join(out)


def decode_mailbox(encoded: str) -> str:
    """The Unicode name for a modified UTF-7 ``encoded`` name; ValueError when it is malformed."""
    out: list[str] = []
    i = 0
    while i < len(encoded):
        char = encoded[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = encoded.find("-", i + 1)
        if end < 0:
            raise ValueError(f"unterminated &...- run in mailbox name {encoded!r}")
        run = encoded[i + 1 : end]
        if not run:
            out.append("&")
        else:
            data = run.replace(",", "/")
            try:
                raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
                out.append(raw.decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ValueError(f"bad modified UTF-7 run {run!r} in mailbox name {encoded!r}") from exc
        i = end + 1
    return "".join(out)


def quote_mailbox(name: str) -> str:
    """``name`` encoded and written as an IMAP quoted string (RFC 3501 §4.3: escape ``\\`` and ``"``).

    imaplib sends arguments as they are, so ``Deleted Items`` unquoted would select ``Deleted``.
    """
    if any(c in name for c in "\r\n\0"):
        raise ValueError("a mailbox name cannot contain CR, LF or NUL")
    encoded = encode_mailbox(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'
