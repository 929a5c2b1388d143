"""A private Dovecot 2.3 (IMAP, IMAPS, POP3, POP3S, LMTP) on 127.0.0.1, per mailservers.md §3.

:meth:`Dovecot.start` writes a private configuration into a fresh root directory under the system temp
dir — NOT under pytest's tmp dirs, which are mode 0700 and would lock out Dovecot's auth process, which
runs as user ``dovecot`` (mailservers.md §7) — picks free ports, starts ``dovecot -F`` as a child
process, and waits until every listener has sent its greeting and ``doveadm user`` proves the auth
process can read the passwd-file. :meth:`Dovecot.stop` terminates it and removes the root.

Users (all in ``example.test``; see :data:`ALICE`, :data:`BOB`, :data:`SHARED`, :data:`MASTER`):

=====================  ===================================================  ==============================
login                  password                                             why
=====================  ===================================================  ==============================
alice@example.test     ``alice-secret-1``                                   ordinary mailbox
bob@example.test       the 50-character password of mailservers.md §3.1     quoting / escaping of secrets
shared@example.test    ``shared-secret-3``                                  a shared (team) mailbox
master                 ``master-secret-9``                                  master user: ``target*master``
=====================  ===================================================  ==============================

Mail is Maildir under ``<root>/mail/<user>/Maildir`` owned by uid/gid 5000. The ACL plugin is on, with a
shared namespace ``shared/<user>/<mailbox>`` (separator ``/``); Archive, Drafts, Sent and Trash exist.
``auth_failure_delay = 0`` and the anvil penalty socket is disabled so failed-login tests do not slow
later logins (mailservers.md §8.6). Note that Dovecot treats 127.0.0.1 -> 127.0.0.1 as a secure
connection; to see plaintext refused, connect from source address 127.0.0.2 (mailservers.md §3.6).

Helpers: :meth:`Dovecot.deliver` (``doveadm save``, any folder), :meth:`Dovecot.deliver_lmtp` (one
recipient per transaction, §3.4 pitfall), :meth:`Dovecot.reset` (expunge everything, delete extra
folders, drop ACL grants), :meth:`Dovecot.set_uidvalidity`, :meth:`Dovecot.create_mailbox`,
:meth:`Dovecot.grant`, :meth:`Dovecot.add_flags`, :meth:`Dovecot.messages` (uid, flags, subject of a folder's
messages), :meth:`Dovecot.uid_of` (UIDs keep growing across resets: look them up by subject).
"""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mailrig.pki import Pki

__all__ = [
    "ALICE",
    "BOB",
    "BOB_PASSWORD",
    "MASTER",
    "SHARED",
    "Dovecot",
    "DovecotPorts",
    "RigUnavailable",
    "User",
    "free_ports",
    "wait_for_greeting",
]

MAIL_UID = 5000  # uid 0 is refused by Dovecot; the uid needs no /etc/passwd entry (mailservers.md §8.2)

# Space, '"', '\\', ':', '%', '*', '{}' and more: exercises every quoting path (mailservers.md §3.1).
BOB_PASSWORD = 'L0ng "pass\\word": with %* {50} chars !?#&+=-_~.,;@'
assert len(BOB_PASSWORD) == 50


@dataclass(frozen=True)
class User:
    login: str
    password: str

    def __repr__(self) -> str:
        return f"User({self.login!r})"


ALICE = User("alice@example.test", "alice-secret-1")
BOB = User("bob@example.test", BOB_PASSWORD)
SHARED = User("shared@example.test", "shared-secret-3")
MASTER = User("master", "master-secret-9")
USERS = (ALICE, BOB, SHARED)


class RigUnavailable(RuntimeError):
    """A loopback server could not be started; the message says why (the fixtures skip or fail)."""


@dataclass(frozen=True)
class DovecotPorts:
    imap: int
    imaps: int
    pop3: int
    pop3s: int
    lmtp: int


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound to port 0, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_greeting(
    host: str, port: int, prefix: bytes | None, deadline: float, context: ssl.SSLContext | None = None
) -> None:
    """Wait until ``host:port`` accepts (and sends a line starting with ``prefix``) or ``deadline`` passes.

    Waiting for the greeting, not just ``accept()``, is what "ready" means (mailservers.md §8.7).
    """
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as raw:
                if context is not None:
                    with context.wrap_socket(raw, server_hostname=host) as tls:
                        line = tls.recv(200)
                else:
                    line = raw.recv(200)
            if prefix is None or line.startswith(prefix):
                return
            last = RuntimeError(f"unexpected greeting {line!r}")
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RigUnavailable(f"{host}:{port} did not greet in time: {last}")


def _ssha512(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


_CONFIG = """\
instance_name = @INSTANCE@
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = @ROOT@/run
state_dir = @ROOT@/state
log_path = @ROOT@/log/dovecot.log
info_log_path = @ROOT@/log/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot

ssl = yes
ssl_cert = <@ROOT@/etc/server-chain.pem
ssl_key = <@ROOT@/etc/server.key
ssl_min_protocol = TLSv1.2

disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_master_user_separator = *
auth_cache_size = 0
auth_failure_delay = 0

passdb {
  driver = passwd-file
  master = yes
  args = @ROOT@/etc/master-users
  pass = yes
}
passdb {
  driver = passwd-file
  args = username_format=%u @ROOT@/etc/users
}
userdb {
  driver = passwd-file
  args = username_format=%u @ROOT@/etc/users
}

mail_location = maildir:~/Maildir
first_valid_uid = @UID@
first_valid_gid = @UID@
mail_plugins = acl

namespace inbox {
  type = private
  separator = /
  prefix =
  inbox = yes
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = create
  }
}
namespace shared {
  type = shared
  separator = /
  prefix = shared/%%u/
  location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%u
  subscriptions = no
  list = children
}
plugin {
  acl = vfile
  acl_shared_dict = file:@ROOT@/mail/shared-mailboxes.db
  acl_user = %u
  acl_anyone = allow
}
protocol imap {
  mail_plugins = $mail_plugins imap_acl
  mail_max_userip_connections = 50
}
protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
  mail_max_userip_connections = 50
}
protocol lmtp {
  auth_username_format = %Lu
}

service imap-login {
  inet_listener imap {
    port = @IMAP@
  }
  inet_listener imaps {
    port = @IMAPS@
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = @POP3@
  }
  inet_listener pop3s {
    port = @POP3S@
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    port = @LMTP@
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service doveadm {
  inet_listener {
    port = 0
  }
}
"""


class Dovecot:
    """One running private Dovecot. Build it with :meth:`start`; always :meth:`stop` it."""

    host = "127.0.0.1"

    def __init__(self, root: Path, ports: DovecotPorts, pki: Pki, process: subprocess.Popen[bytes]) -> None:
        self.root = root
        self.conf = root / "etc" / "dovecot.conf"
        self.ports = ports
        self.pki = pki
        self.process = process

    # ----------------------------------------------------------------------------- lifecycle
    @classmethod
    def start(
        cls, pki: Pki, *, ports: DovecotPorts | None = None, extra_config: str = "", timeout: float = 20.0
    ) -> Dovecot:
        """Configure and start a private Dovecot; raise :class:`RigUnavailable` with the reason if it fails."""
        for tool in ("dovecot", "doveadm", "doveconf"):
            if shutil.which(tool) is None:
                raise RigUnavailable(f"{tool} is not installed (run .ci/mailservers.sh)")
        if os.geteuid() != 0:
            raise RigUnavailable("the Dovecot rig runs dovecot as root; not root here")
        try:
            grp.getgrnam("dovecot")
        except KeyError:
            raise RigUnavailable("system group 'dovecot' missing (dovecot-core not installed?)") from None
        ports = ports or DovecotPorts(*free_ports(5))
        root = Path(tempfile.mkdtemp(prefix="enate-dovecot-"))
        try:
            cls._prepare(root, ports, pki, extra_config)
            conf = root / "etc" / "dovecot.conf"
            check = subprocess.run(["doveconf", "-c", str(conf), "-n"], capture_output=True, check=False)
            if check.returncode != 0:
                raise RigUnavailable(f"doveconf rejected the config: {check.stderr.decode(errors='replace')}")
            server = cls(root, ports, pki, _launch(root))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def _prepare(root: Path, ports: DovecotPorts, pki: Pki, extra_config: str) -> None:
        # mkdtemp makes 0700; the auth process (user dovecot) must traverse it (mailservers.md §8.3).
        root.chmod(0o755)
        for sub in ("run", "state", "etc", "log", "mail"):
            (root / sub).mkdir(mode=0o755)
            (root / sub).chmod(0o755)
        # The mail processes (uid 5000) create homes and write the shared-mailboxes dict here (§8.4).
        os.chown(root / "mail", MAIL_UID, MAIL_UID)
        shutil.copyfile(pki.server_chain, root / "etc" / "server-chain.pem")
        shutil.copyfile(pki.server_key, root / "etc" / "server.key")
        (root / "etc" / "server.key").chmod(0o600)
        gid = grp.getgrnam("dovecot").gr_gid
        lines = [
            f"{u.login}:{_ssha512(u.password)}:{MAIL_UID}:{MAIL_UID}::{root}/mail/{u.login}::" for u in USERS
        ]
        for name, text in (
            ("users", "\n".join(lines) + "\n"),
            ("master-users", f"{MASTER.login}:{_ssha512(MASTER.password)}\n"),
        ):
            path = root / "etc" / name
            path.write_text(text)
            os.chown(path, 0, gid)
            path.chmod(0o640)
        config = _CONFIG
        for key, value in {
            "ROOT": str(root),
            "INSTANCE": f"enate-test-{os.getpid()}-{root.name[-6:]}",
            "UID": str(MAIL_UID),
            "IMAP": str(ports.imap),
            "IMAPS": str(ports.imaps),
            "POP3": str(ports.pop3),
            "POP3S": str(ports.pop3s),
            "LMTP": str(ports.lmtp),
        }.items():
            config = config.replace(f"@{key}@", value)
        (root / "etc" / "dovecot.conf").write_text(config + extra_config + "\n")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_pem))
        probes: list[tuple[int, bytes | None, ssl.SSLContext | None]] = [
            (self.ports.imap, b"* OK", None),
            (self.ports.pop3, b"+OK", None),
            (self.ports.lmtp, b"220", None),
            (self.ports.imaps, b"* OK", ctx),
            (self.ports.pop3s, b"+OK", ctx),
        ]
        for port, prefix, context in probes:
            if self.process.poll() is not None:
                break
            try:
                wait_for_greeting(self.host, port, prefix, deadline, context)
            except RigUnavailable as exc:
                raise RigUnavailable(f"{exc}\n{self.log_tail()}") from None
        if self.process.poll() is not None:
            raise RigUnavailable(f"dovecot exited with {self.process.returncode}\n{self.log_tail()}")
        # The greeting appears even when auth cannot read the passwd-file; doveadm user proves it can.
        result = self.doveadm("user", ALICE.login, check=False)
        if result.returncode != 0:
            raise RigUnavailable(f"doveadm user failed: {result.stderr.strip()}\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate Dovecot (master and children) and remove its root directory."""
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, down_for: float = 0.0, timeout: float = 20.0) -> None:
        """Stop Dovecot as a service restart does (every session ends), wait ``down_for`` seconds, and start it
        again on the same ports, users and mail."""
        self._terminate()
        time.sleep(down_for)
        self.process = _launch(self.root)
        self._wait_ready(timeout)

    def _terminate(self) -> None:
        """End the master and every process it started, as a service manager stopping Dovecot does (its
        control group): the master alone leaves the sessions running, an IDLE one included."""
        if self.process.poll() is not None:
            return
        children = _children_of(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        for pid in children:  # SIGTERM, as systemd sends it: an imap process says BYE to its client
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        texts = []
        for name in ("stdout.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                texts.extend((self.root / "log" / name).read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts)

    # ----------------------------------------------------------------------------- doveadm helpers
    def doveadm(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c <our conf> ARGS``; raise with stderr when ``check`` and it fails."""
        result = subprocess.run(
            ["doveadm", "-c", str(self.conf), *args],
            input=input.decode("utf-8", "surrogateescape") if input is not None else None,
            capture_output=True, text=True, check=False, timeout=30,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def deliver(self, user: User | str, message: bytes, mailbox: str = "INBOX") -> None:
        """Store ``message`` in ``mailbox`` of ``user`` (``doveadm save``; synchronous, any folder)."""
        login = user.login if isinstance(user, User) else user
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "save", "-u", login, "-m", mailbox],
            input=message, capture_output=True, check=True, timeout=30,
        )

    def deliver_lmtp(self, recipient: str, message: bytes, sender: str = "sender@example.net") -> None:
        """Deliver over LMTP, one recipient per transaction (smtplib.LMTP reads one DATA reply, §3.4)."""
        with smtplib.LMTP(self.host, self.ports.lmtp, timeout=10) as lmtp:
            lmtp.sendmail(sender, [recipient], message)

    def create_mailbox(self, user: User | str, name: str) -> None:
        login = user.login if isinstance(user, User) else user
        self.doveadm("mailbox", "create", "-u", login, name)

    def mailboxes(self, user: User | str) -> list[str]:
        login = user.login if isinstance(user, User) else user
        out = self.doveadm("mailbox", "list", "-u", login).stdout
        return [line for line in out.splitlines() if line]

    def grant(self, owner: User | str, mailbox: str, grantee: User | str, rights: str = "lrswite") -> None:
        """Let ``grantee`` see ``owner``'s ``mailbox`` as ``shared/<owner>/<mailbox>`` (IMAP ACL rights)."""
        login = owner.login if isinstance(owner, User) else owner
        other = grantee.login if isinstance(grantee, User) else grantee
        names = {"l": "lookup", "r": "read", "s": "write-seen", "w": "write", "i": "insert",
                 "t": "write-deleted", "e": "expunge", "k": "create", "x": "delete", "a": "admin"}
        self.doveadm("acl", "set", "-u", login, mailbox, f"user={other}", *(names[r] for r in rights))

    def set_uidvalidity(self, user: User | str, mailbox: str, value: int) -> None:
        """Change a folder's UIDVALIDITY, as a server restore or folder re-creation would (RFC 3501 §2.3.1.1)."""
        login = user.login if isinstance(user, User) else user
        self.doveadm("mailbox", "update", "-u", login, "--uid-validity", str(value), mailbox)

    def uidvalidity(self, user: User | str, mailbox: str = "INBOX") -> int:
        login = user.login if isinstance(user, User) else user
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", login, "uidvalidity", mailbox).stdout
        return int(out.strip().split("=", 1)[1])

    def add_flags(self, user: User | str, uid: int | str, flags: str, mailbox: str = "INBOX") -> None:
        """Set ``flags`` on one message, as another mail client would (``doveadm flags add``)."""
        login = user.login if isinstance(user, User) else user
        self.doveadm("flags", "add", "-u", login, flags, "mailbox", mailbox, "uid", str(uid))

    def messages(self, user: User | str, mailbox: str = "INBOX") -> list[dict[str, str]]:
        """The messages of a folder as dicts with ``uid``, ``flags`` and ``subject``, in UID order."""
        login = user.login if isinstance(user, User) else user
        out = self.doveadm(
            "-f", "tab", "fetch", "-u", login, "uid flags hdr.subject", "mailbox", mailbox
        ).stdout
        rows = [line.split("\t") for line in out.splitlines()]
        if not rows:
            return []
        header, body = rows[0], rows[1:]
        found = [dict(zip(header, row, strict=False)) for row in body if row and row[0]]
        return [{"uid": r.get("uid", ""), "flags": r.get("flags", ""), "subject": r.get("hdr.subject", "")}
                for r in found]

    def uid_of(self, user: User | str, subject: str, mailbox: str = "INBOX") -> int:
        """The UID of the message with ``subject`` (UIDs keep growing across resets, RFC 3501 §2.3.1.1)."""
        [uid] = [int(m["uid"]) for m in self.messages(user, mailbox) if m["subject"] == subject]
        return uid

    def reset(self, user: User | str) -> None:
        """Empty every folder, delete folders other than the defaults, and drop ACL grants on INBOX."""
        login = user.login if isinstance(user, User) else user
        keep = {"INBOX", "Drafts", "Sent", "Trash", "Archive"}
        extra = [m for m in self.mailboxes(login) if m not in keep and not m.startswith("shared/")]
        # Deepest first, so children go before their parents.
        for name in sorted(extra, key=lambda m: m.count("/"), reverse=True):
            self.doveadm("mailbox", "delete", "-u", login, "-s", name, check=False)
        self.doveadm("expunge", "-u", login, "mailbox", "*", "all")
        acl = self.doveadm("-f", "tab", "acl", "get", "-u", login, "INBOX", check=False).stdout
        for line in acl.splitlines()[1:]:
            ident = line.split("\t", 1)[0]
            if ident.startswith("user="):
                self.doveadm("acl", "delete", "-u", login, "INBOX", ident, check=False)

    def reset_all(self) -> None:
        for user in USERS:
            self.reset(user)


def _launch(root: Path) -> subprocess.Popen[bytes]:
    """Start the Dovecot master of the rig in ``root`` in the foreground (its output appended to a log file)."""
    with (root / "log" / "stdout.log").open("ab") as out:
        return subprocess.Popen(["dovecot", "-F", "-c", str(root / "etc" / "dovecot.conf")], stdout=out,
                                stderr=subprocess.STDOUT)


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (name) state ppid ...": the name may hold spaces and parentheses, so split after the last ')'.
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children
