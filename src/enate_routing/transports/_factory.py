"""From a configured :class:`~enate_routing._model.Connector` to a transport (docs/semantics.md §2, §8).

The adapters know nothing of the configuration model; this module is the one place that reads a
connector's servers, resolves its secrets (inline or ``*_env``), loads its ``.pfx`` and builds the
:class:`~.base.Endpoint` and credentials the adapters take.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from enate_routing._certificates import ClientCertificate, load_pkcs12
from enate_routing._model import Connector, IncomingServer, OutgoingServer
from enate_routing._paths import configured_path
from enate_routing.errors import ConfigError
from enate_routing.transports._base import (
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
from enate_routing.transports._graph import GraphSender, GraphSource, check_graph_connection
from enate_routing.transports._graph_client import GraphClient
from enate_routing.transports._imap import ImapSource, check_imap_connection, delegate_login, shared_folder
from enate_routing.transports._pop3 import Pop3Source, check_pop3_connection
from enate_routing.transports._smtp import SmtpSender, check_smtp_connection
from enate_routing.transports._token_sources import Use, token_source
from enate_routing.transports._tokens import TokenSource

__all__ = ["ConnectorAccess", "check_connection", "open_sender", "open_source"]

TokenProvider = Callable[[Connector], str]
"""The host's OAuth 2.0 callback: a current access token for the connector's login. Without one, a connector's
``[connectors.oauth]`` section says how the library obtains tokens itself (docs/microsoft365.md, docs/google.md)."""


@dataclass(frozen=True, slots=True)
class ConnectorAccess:
    """What the configuration file does not hold but a connection needs.

    ``base_dir`` resolves relative ``ca_file`` and ``certificate`` paths (the configuration file's
    folder); ``environ`` is where ``*_env`` secrets are read (default ``os.environ``); ``token_provider``
    supplies OAuth 2.0 tokens; ``timeout`` bounds every socket operation. ``additional`` overrides the
    connector's ``additional_access`` (how its ``additional_mailbox`` is reached): ``shared-folder`` (an IMAP
    shared namespace, e.g. Dovecot's ``shared/<owner>/INBOX``; never POP3), ``delegate`` (a Dovecot
    master-user login ``target*login``) or ``office365-delegate`` (``login\\target`` with a password; the
    shared address itself with the delegate's OAuth token). ``source_address`` binds the local side.
    """

    base_dir: Path = Path()
    environ: Mapping[str, str] | None = None
    token_provider: TokenProvider | None = None
    timeout: float = 30.0
    additional: Literal["shared-folder", "delegate", "office365-delegate"] | None = None
    source_address: str | None = None
    wait: Callable[[float], object] | None = None
    """How a source waits out a server's ``Retry-After`` (default ``time.sleep``); returning True cuts the call
    short (the worker is stopping: ``poll`` passes a wait that SIGTERM ends)."""


def _where(connector: Connector) -> str:
    return f"connector {connector.name!r}"


def _endpoint(server: IncomingServer | OutgoingServer, connector: Connector, access: ConnectorAccess) -> Endpoint:
    ca_file = configured_path(server.ca_file, access.base_dir) if server.ca_file is not None else None
    return Endpoint(
        host=server.host, port=server.port, security=server.security, ca_file=ca_file, timeout=access.timeout,
        allow_plaintext_auth=connector.allow_plaintext_auth, source_address=access.source_address,
    )


def _tokens(connector: Connector, access: ConnectorAccess, use: Use, subject: str, graph_host: str | None = None
            ) -> TokenSource:
    provider = access.token_provider
    return token_source(connector, use, subject, host_provider=(lambda: provider(connector)) if provider else None,
                        graph_host=graph_host, base_dir=access.base_dir, environ=access.environ,
                        timeout=access.timeout)


def _login(connector: Connector, access: ConnectorAccess, method: str, login: str | None = None,
           use: Use = "imap") -> MailboxCredentials:
    username = login or connector.username
    if username is None:
        raise ConfigError.single("a username is required to log in", where=_where(connector), field="username")
    if method == "oauth2":
        # Google's service account acts for the mailbox owner (the login); Microsoft's token is the app's or
        # the signed-in delegate's, whichever mailbox the login names.
        tokens = _tokens(connector, access, use, connector.username or username)
        return OAuth2Auth(username, tokens.token, token_refused=tokens.invalidate)
    password = connector.password_value(access.environ)
    if password is None:
        raise ConfigError.single("no password given (password or password_env)", where=_where(connector),
                                 field="password")
    return PasswordAuth(username, password)


def _certificate(connector: Connector, access: ConnectorAccess) -> ClientCertificate:
    if connector.certificate is None:
        raise ConfigError.single("no certificate given", where=_where(connector), field="certificate")
    return load_pkcs12(configured_path(connector.certificate, access.base_dir),
                       connector.certificate_password_value(access.environ), where=_where(connector))


def _processed(server: IncomingServer) -> ProcessedAction:
    if server.processed == "move":
        return MoveAction(server.processed_folder)
    if server.processed == "flag":
        return FlagAction()
    if server.processed == "mark-read":
        return FlagAction("\\Seen")
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
        mode = access.additional or connector.additional_mode
        if mode == "shared-folder":
            if server.protocol == "pop3":  # POP3 has no folders: this would read the primary mailbox
                raise ConfigError.single("POP3 has no folders; reach the additional mailbox by a delegated login",
                                         where=_where(connector), field="additional_access", item=mode)
            folder = shared_folder(target, server.folder)
        elif mode == "office365-delegate" and server.auth == "oauth2":
            login = target  # Office 365 OAuth: the shared address logs in with the delegate's token
        else:
            style: Literal["dovecot", "office365"] = "dovecot" if mode == "delegate" else "office365"
            login = delegate_login(target, connector.username or "", style=style)
    use: Use = "pop3" if server.protocol == "pop3" else "imap"
    return _endpoint(server, connector, access), _login(connector, access, server.auth, login, use), folder


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
    server = _incoming(connector)
    if server.protocol == "graph":
        return _graph_source(connector, access, mailbox)
    endpoint, credentials, folder = _source_args(connector, access, mailbox)
    if server.protocol == "imap":
        return ImapSource(endpoint, credentials, folder, processed=_processed(server))
    return Pop3Source(endpoint, credentials, delete_processed=server.processed not in ("flag", "mark-read"))


def _graph_client(connector: Connector, access: ConnectorAccess, server: IncomingServer | OutgoingServer,
                  subject: str) -> GraphClient:
    endpoint = _endpoint(server, connector, access)
    host = endpoint.host if endpoint.port == 443 else endpoint.label
    return GraphClient(endpoint, _tokens(connector, access, "graph", subject, graph_host=host),
                       sleep=access.wait or time.sleep)


def _graph_source(connector: Connector, access: ConnectorAccess,
                  mailbox: Literal["primary", "additional"] = "primary") -> GraphSource:
    server = _incoming(connector)
    address = connector.primary_address
    if mailbox == "additional":
        if connector.additional_mailbox is None:
            raise ConfigError.single("no additional_mailbox is configured", where=_where(connector),
                                     field="additional_mailbox")
        address = connector.additional_mailbox
    processed: ProcessedAction = _processed(server)
    if server.processed == "flag":
        processed = FlagAction("Processed")  # an Outlook category, shown in every Outlook client
    return GraphSource(_graph_client(connector, access, server, address), address, server.folder, processed=processed)


def _graph_sender(connector: Connector, access: ConnectorAccess) -> GraphSender:
    server = connector.outgoing
    assert server is not None  # office365-graph presets fill it whenever the connector sends
    return GraphSender(_graph_client(connector, access, server, connector.primary_address), connector.primary_address)


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
        credentials = _login(connector, access, server.auth, use="smtp")
    return _endpoint(server, connector, access), credentials


def open_sender(connector: Connector, access: ConnectorAccess = ConnectorAccess()) -> MailSender:
    """A :class:`~.base.MailSender` sending through the connector's outgoing server (or Graph's sendMail)."""
    if connector.service == "office365-graph" and connector.outgoing is not None:
        return _graph_sender(connector, access)
    endpoint, credentials = _sender_args(connector, access)
    return SmtpSender(endpoint, credentials)


def check_connection(
    connector: Connector, access: ConnectorAccess = ConnectorAccess()
) -> tuple[ConnectionTestResult, ...]:
    """Test every direction the connector is used for: a real login plus SELECT / STAT / NOOP (docs/semantics.md §2).

    Returns one result per server (incoming first), and for a connector with an ``additional_mailbox`` a
    second incoming result for that mailbox (its ``detail`` starts with ``additional mailbox``). A
    configuration problem (a missing password, an unusable certificate, POP3 with a shared folder) is a
    failed result too, so a host's "Test connection" button never crashes.
    """
    results: list[ConnectionTestResult] = []
    graph = connector.service == "office365-graph"
    if connector.uses_incoming:
        protocol = _incoming(connector).protocol
        results.append(_guarded(protocol, lambda: _test_incoming(connector, access, "primary"), connector.incoming))
        if connector.additional_mailbox is not None:
            additional = _guarded(protocol, lambda: _test_incoming(connector, access, "additional"),
                                  connector.incoming)
            results.append(replace(additional, detail=f"additional mailbox {connector.additional_mailbox}: "
                                                      f"{additional.detail}"))
    if connector.uses_outgoing:
        results.append(_guarded("graph" if graph else "smtp", lambda: _test_outgoing(connector, access),
                                connector.outgoing))
    return tuple(results)


def _test_incoming(
    connector: Connector, access: ConnectorAccess, mailbox: Literal["primary", "additional"]
) -> ConnectionTestResult:
    server = _incoming(connector)
    if server.protocol == "graph":
        return check_graph_connection(source=_graph_source(connector, access, mailbox))
    endpoint, credentials, folder = _source_args(connector, access, mailbox)
    if server.protocol == "imap":
        return check_imap_connection(endpoint, credentials, folder, processed=_processed(server))
    return check_pop3_connection(endpoint, credentials)


def _test_outgoing(connector: Connector, access: ConnectorAccess) -> ConnectionTestResult:
    if connector.service == "office365-graph" and connector.outgoing is not None:
        return check_graph_connection(sender=_graph_sender(connector, access))
    endpoint, credentials = _sender_args(connector, access)
    return check_smtp_connection(endpoint, credentials)


def _guarded(
    protocol: Literal["imap", "pop3", "smtp", "graph"], run: Callable[[], ConnectionTestResult],
    server: IncomingServer | OutgoingServer | None,
) -> ConnectionTestResult:
    try:
        return run()
    except ConfigError as exc:
        label = f"{server.host}:{server.port}" if server is not None else "-"
        return ConnectionTestResult(ok=False, protocol=protocol, server=label, detail=str(exc), elapsed=0.0,
                                    error=type(exc).__name__)
