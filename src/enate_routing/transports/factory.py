"""From a configured :class:`~enate_routing.model.Connector` to a transport (docs/semantics.md §2, §8).

The adapters know nothing of the configuration model; this module is the one place that reads a
connector's servers, resolves its secrets (inline or ``*_env``), loads its ``.pfx`` and builds the
:class:`~.base.Endpoint` and credentials the adapters take.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from enate_routing.certificates import ClientCertificate, load_pkcs12
from enate_routing.errors import ConfigError
from enate_routing.model import Connector, IncomingServer, OutgoingServer
from enate_routing.transports.base import (
    CertificateAuth,
    ConnectionTestResult,
    Credentials,
    DeleteAction,
    Endpoint,
    FlagAction,
    MailboxCredentials,
    MailSender,
    MailSource,
    MoveAction,
    NoAuth,
    OAuth2Auth,
    PasswordAuth,
    ProcessedAction,
)
from enate_routing.transports.imap import ImapSource, delegate_login, shared_folder, test_imap_connection
from enate_routing.transports.pop3 import Pop3Source, test_pop3_connection
from enate_routing.transports.smtp import SmtpSender, test_smtp_connection

__all__ = ["ConnectorAccess", "check_connection", "open_sender", "open_source"]

TokenProvider = Callable[[Connector], str]
"""The host's OAuth 2.0 callback: a current access token for the connector's login."""


@dataclass(frozen=True, slots=True)
class ConnectorAccess:
    """What the configuration file does not hold but a connection needs.

    ``base_dir`` resolves relative ``ca_file`` and ``certificate`` paths (the configuration file's
    folder); ``environ`` is where ``*_env`` secrets are read (default ``os.environ``); ``token_provider``
    supplies OAuth 2.0 tokens; ``timeout`` bounds every socket operation. ``additional`` selects how the
    connector's ``additional_mailbox`` is reached: ``shared-folder`` (an IMAP shared namespace, e.g.
    Dovecot's ``shared/<owner>/INBOX``), ``delegate`` (a Dovecot master-user login ``target*login``) or
    ``office365-delegate`` (``login\\target``). ``source_address`` binds the local side.
    """

    base_dir: Path = Path()
    environ: Mapping[str, str] | None = None
    token_provider: TokenProvider | None = None
    timeout: float = 30.0
    additional: Literal["shared-folder", "delegate", "office365-delegate"] = "shared-folder"
    source_address: str | None = None


def _where(connector: Connector) -> str:
    return f"connector {connector.name!r}"


def _endpoint(server: IncomingServer | OutgoingServer, connector: Connector, access: ConnectorAccess) -> Endpoint:
    ca_file = None
    if server.ca_file is not None:
        ca_file = Path(server.ca_file)
        ca_file = ca_file if ca_file.is_absolute() else access.base_dir / ca_file
    return Endpoint(
        host=server.host, port=server.port, security=server.security, ca_file=ca_file, timeout=access.timeout,
        allow_plaintext_auth=connector.allow_plaintext_auth, source_address=access.source_address,
    )


def _login(connector: Connector, access: ConnectorAccess, method: str, login: str | None = None) -> MailboxCredentials:
    username = login or connector.username
    if username is None:
        raise ConfigError.single("a username is required to log in", where=_where(connector), field="username")
    if method == "oauth2":
        provider = access.token_provider
        if provider is None:
            raise ConfigError.single("OAuth 2.0 needs a token provider from the host", where=_where(connector),
                                     field="auth")
        return OAuth2Auth(username, lambda: provider(connector))
    password = connector.password_value(access.environ)
    if password is None:
        raise ConfigError.single("no password given (password or password_env)", where=_where(connector),
                                 field="password")
    return PasswordAuth(username, password)


def _certificate(connector: Connector, access: ConnectorAccess) -> ClientCertificate:
    if connector.certificate is None:
        raise ConfigError.single("no certificate given", where=_where(connector), field="certificate")
    path = Path(connector.certificate)
    return load_pkcs12(path if path.is_absolute() else access.base_dir / path,
                       connector.certificate_password_value(access.environ), where=_where(connector))


def _processed(server: IncomingServer) -> ProcessedAction:
    if server.processed == "move":
        return MoveAction(server.processed_folder)
    if server.processed == "flag":
        return FlagAction()
    return DeleteAction()


def _incoming(connector: Connector) -> IncomingServer:
    if connector.incoming is None:
        raise ConfigError.single(f"connector is used for {connector.use_for} only; it has no incoming server",
                                 where=_where(connector), field="incoming")
    return connector.incoming


def _source_args(
    connector: Connector, access: ConnectorAccess, mailbox: Literal["primary", "additional"]
) -> tuple[Endpoint, MailboxCredentials, str]:
    server = _incoming(connector)
    folder, login = server.folder, None
    if mailbox == "additional":
        target = connector.additional_mailbox
        if target is None:
            raise ConfigError.single("no additional_mailbox is configured", where=_where(connector),
                                     field="additional_mailbox")
        if access.additional == "shared-folder":
            folder = shared_folder(target, server.folder)
        else:
            style: Literal["dovecot", "office365"] = "dovecot" if access.additional == "delegate" else "office365"
            login = delegate_login(target, connector.username or "", style=style)
    return _endpoint(server, connector, access), _login(connector, access, server.auth, login), folder


def open_source(
    connector: Connector,
    access: ConnectorAccess = ConnectorAccess(),  # frozen, so one shared default is safe
    *,
    mailbox: Literal["primary", "additional"] = "primary",
) -> MailSource:
    """A :class:`~.base.MailSource` reading the connector's mailbox (or its ``additional_mailbox``).

    IMAP marks processed mail as ``incoming.processed`` says (move / flag / delete). POP3 has no folders
    or flags: ``move`` and ``delete`` both delete the message (DELE, committed by QUIT) once it is
    processed; ``flag`` leaves it on the server and the ingestion ledger remembers its UIDL.
    """
    endpoint, credentials, folder = _source_args(connector, access, mailbox)
    server = _incoming(connector)
    if server.protocol == "imap":
        return ImapSource(endpoint, credentials, folder, processed=_processed(server))
    return Pop3Source(endpoint, credentials, delete_processed=server.processed != "flag")


def _sender_args(connector: Connector, access: ConnectorAccess) -> tuple[Endpoint, Credentials]:
    server = connector.outgoing
    if server is None:
        raise ConfigError.single(f"connector is used for {connector.use_for} only; it has no outgoing server",
                                 where=_where(connector), field="outgoing")
    credentials: Credentials
    if server.auth == "none":
        credentials = NoAuth()
    elif server.auth == "certificate":
        credentials = CertificateAuth(_certificate(connector, access))
    else:
        credentials = _login(connector, access, server.auth)
    return _endpoint(server, connector, access), credentials


def open_sender(connector: Connector, access: ConnectorAccess = ConnectorAccess()) -> MailSender:
    """A :class:`~.base.MailSender` sending through the connector's outgoing server."""
    endpoint, credentials = _sender_args(connector, access)
    return SmtpSender(endpoint, credentials)


def check_connection(
    connector: Connector, access: ConnectorAccess = ConnectorAccess()
) -> tuple[ConnectionTestResult, ...]:
    """Test every direction the connector is used for: a real login plus SELECT / STAT / NOOP (docs/semantics.md §2).

    Returns one result per server (incoming first). A configuration problem (a missing password, an
    unusable certificate) is a failed result too, so a host's "Test connection" button never crashes.
    """
    results: list[ConnectionTestResult] = []
    if connector.uses_incoming:
        results.append(_guarded("imap" if _incoming(connector).protocol == "imap" else "pop3",
                                lambda: _test_incoming(connector, access), connector))
    if connector.uses_outgoing:
        results.append(_guarded("smtp", lambda: _test_outgoing(connector, access), connector))
    return tuple(results)



def _test_incoming(connector: Connector, access: ConnectorAccess) -> ConnectionTestResult:
    endpoint, credentials, folder = _source_args(connector, access, "primary")
    server = _incoming(connector)
    if server.protocol == "imap":
        return test_imap_connection(endpoint, credentials, folder, processed=_processed(server))
    return test_pop3_connection(endpoint, credentials)


def _test_outgoing(connector: Connector, access: ConnectorAccess) -> ConnectionTestResult:
    endpoint, credentials = _sender_args(connector, access)
    return test_smtp_connection(endpoint, credentials)


def _guarded(
    protocol: Literal["imap", "pop3", "smtp"], run: Callable[[], ConnectionTestResult], connector: Connector
) -> ConnectionTestResult:
    try:
        return run()
    except ConfigError as exc:
        server = connector.incoming if protocol != "smtp" else connector.outgoing
        label = f"{server.host}:{server.port}" if server is not None else "-"
        return ConnectionTestResult(ok=False, protocol=protocol, server=label, detail=str(exc), elapsed=0.0,
                                    error=type(exc).__name__)
