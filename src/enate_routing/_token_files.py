"""OAuth refresh-token files: the one rule for whether a file can be used, and how ``login`` writes one.

``enate-routing login`` (and Google's refresh) store ``{"refresh_token": ..., <non-secret facts>}`` as JSON,
mode 0600. :func:`read_token_file` is the rule the transports apply at first use
(``transports._tokens.read_refresh_token``) and ``check`` applies before it
(``_dead_settings.find_token_file_problems``), so the two cannot disagree. Standard library only, so
configuration code need not import a transport to ask.

A :class:`TokenFileProblem` names the path at most, never the token.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
from pathlib import Path
from typing import Literal

__all__ = ["TokenFileProblem", "read_token_file", "write_token_file"]

ProblemKind = Literal["missing", "unreadable", "exposed", "invalid", "mismatch"]
# How a token file comes about: `login` writes Microsoft's; Google's consent needs Google's own tools.
_SIGN_IN = "(`enate-routing login NAME` for Microsoft; docs/google.md for Google)"


class TokenFileProblem(Exception):
    """Why a token file cannot be used: ``kind`` for code that decides how bad it is, ``reason`` for people.

    ``missing``: no such file; ``unreadable``: permission denied to this user; ``exposed``: the group or others
    may read it; ``invalid``: anything else (not a regular file, not JSON, no refresh token); ``mismatch``:
    written for another provider or OAuth client than the configuration names.
    """

    def __init__(self, kind: ProblemKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: ProblemKind = kind
        self.reason = reason


def read_token_file(path: Path, *, provider: str | None = None, client_id: str | None = None) -> str:
    """The refresh token stored in ``path``; raises :class:`TokenFileProblem`.

    The mode is tested before anything is read: on POSIX a file that the group or others may read (or
    write) is refused, since a refresh token signs in as the mailbox's user. A file that records the
    ``provider`` or ``client_id`` it was issued to (``login`` writes both) must name the configured ones: a
    refresh token works only for the client it was issued to, and the provider's own answer to another
    client (``invalid_grant``) does not say the configuration changed after the sign-in.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TokenFileProblem("missing", f"no token file: sign in first {_SIGN_IN}") from None
    except OSError as exc:
        raise _unreadable(exc) from None
    if not stat.S_ISREG(mode):
        raise TokenFileProblem("invalid", "cannot read the token file (not a regular file)")
    if os.name == "posix" and mode & 0o077:
        raise TokenFileProblem("exposed", f"other users may access the token file (mode {mode & 0o777:04o}), so it "
                                          f"is refused: chmod 600 {shlex.quote(str(path))}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _unreadable(exc) from None
    except ValueError:  # bad JSON or bad UTF-8; the text may hold a token, so none of it is quoted
        raise TokenFileProblem("invalid", "not a token file (JSON holding a \"refresh_token\"): sign in again "
                                          f"{_SIGN_IN}") from None
    token = data.get("refresh_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenFileProblem("invalid", f"the token file holds no \"refresh_token\": sign in again {_SIGN_IN}")
    for fact, configured in (("provider", provider), ("client_id", client_id)):
        stored = data.get(fact)
        if configured is not None and isinstance(stored, str) and stored != configured:
            raise TokenFileProblem("mismatch", f"the token file was issued to {fact} {stored!r}, but the "
                                               f"configuration names {configured!r}: sign in again {_SIGN_IN}")
    return token


def _unreadable(exc: OSError) -> TokenFileProblem:
    """Permission denied may hold only for this user (``check`` run by another account than ``poll``);
    anything else (a path through a plain file, an I/O error) holds for everyone."""
    kind: ProblemKind = "unreadable" if isinstance(exc, PermissionError) else "invalid"
    return TokenFileProblem(kind, f"cannot read the token file ({exc.strerror or type(exc).__name__})")


def write_token_file(path: Path, token: str, **facts: str) -> None:
    """Store ``token`` (and non-secret ``facts``) in ``path``, mode 0600 from the first byte, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({**facts, "refresh_token": token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
