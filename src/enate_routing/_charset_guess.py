"""A likely charset for raw 8-bit header bytes that are not UTF-8 (docs/envelope.md, real-world recovery).

Headers should be ASCII (RFC 2047 words) or UTF-8 (RFC 6532), but real mail also carries raw Shift-JIS,
GB2312 or Windows-1252 bytes with no declaration. Reading those as latin-1 gives mojibake that no route
or person can use, so before falling back we try the charsets such mail uses, strictly, and accept one
only when its text looks like that language (judged on all the message's undeclared header bytes at once,
then applied to each header that decodes with it):

* Shift-JIS: decodes strictly, every non-ASCII character is Japanese (kana, kanji, CJK punctuation,
  full-width forms), and at least one is kana — Japanese text nearly always has kana, and Latin or
  Chinese bytes read as Shift-JIS give half-width katakana or no kana at all;
* GB2312: decodes strictly (its byte ranges are narrow: lead and trail bytes 0xA1–0xFE), every
  non-ASCII character is Chinese (hanzi, CJK punctuation, full-width forms);
* Windows-1252, reported as latin-1 when no byte in 0x80–0x9F needs it (then the two agree);
* latin-1, which decodes anything.
"""

from __future__ import annotations

import re

__all__ = ["guess_undeclared", "likely_charset"]

_JAPANESE = re.compile(r"[\x00-\x7f\u3000-\u303f\u3040-\u30ff\u4e00-\u9fff\uff01-\uff5e\u2010-\u2027\u25a0-\u25ff]*")
_KANA = re.compile(r"[\u3040-\u30ff]")
_CHINESE = re.compile(r"[\x00-\x7f\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e\u2010-\u2027\u25a0-\u25ff]*")
_HANZI = re.compile(r"[\u4e00-\u9fff]")
_WINDOWS_ONLY = re.compile(rb"[\x80-\x9f]")


# Each East Asian charset tried in turn: what all its text must be, and what at least one character must be.
_EAST_ASIAN = (("shift_jis", _JAPANESE, _KANA), ("gb2312", _CHINESE, _HANZI))


def likely_charset(sample: bytes) -> str:
    """The likely charset of ``sample`` (8-bit, not UTF-8): shift_jis, gb2312, cp1252 or latin-1."""
    for charset, whole, marker in _EAST_ASIAN:
        try:
            text = sample.decode(charset)
        except UnicodeDecodeError:
            continue
        if whole.fullmatch(text) and marker.search(text):
            return charset
    if _WINDOWS_ONLY.search(sample):
        try:
            sample.decode("cp1252")
        except UnicodeDecodeError:
            return "latin-1"
        return "cp1252"
    return "latin-1"


def guess_undeclared(value: bytes, message_charset: str | None = None) -> tuple[str, str]:
    """``value`` (8-bit, not UTF-8) decoded: with ``message_charset`` when it decodes strictly, else with
    its own likely charset. Returns (text, charset name).

    ``message_charset`` is the likely charset of all the message's undeclared header bytes together: a
    From holding only kanji cannot tell Shift-JIS from Latin bytes on its own, but the kana of the
    Subject beside it can.
    """
    if message_charset is not None:
        try:
            return value.decode(message_charset), message_charset
        except UnicodeDecodeError:
            pass
    charset = likely_charset(value)
    return value.decode(charset), charset
