"""What :meth:`Ingestor.from_config` derives from a configuration: the source, the senders, the limits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

from enate_routing._ack_template import AckTemplate
from enate_routing._decision import Decision
from enate_routing._model import Config
from enate_routing.errors import ConfigError
from enate_routing.ingest._acknowledge import AckRoute, AckWording, sending_connector
from enate_routing.transports._base import MailSender
from enate_routing.transports._factory import ConnectorAccess, open_sender, open_source

__all__ = ["ingestor_options"]


def ingestor_options(
    config: Config, connector: str, access: ConnectorAccess | None, mailbox: Literal["primary", "additional"],
    options: dict[str, Any],
) -> dict[str, Any]:
    """Constructor arguments for ``connector``: ``options`` (which win) plus what the configuration says.

    An acknowledgement goes out from the address the mail was routed for when it is one of the connector's
    own addresses, else from its primary address (or ``ack_from``), through the connector
    :func:`sending_connector` chooses for that address. A chosen connector that is disabled sends nothing
    (``no-sender``). Raises :class:`ConfigError` for a connector that does not exist, reads no mail, or
    is disabled (docs/semantics.md §2: only an enabled connector is polled).
    """
    try:
        settings = config.connector(connector)
    except KeyError:
        raise ConfigError.single("no connector has this name", item=connector) from None
    where = f"connector {connector!r}"
    if settings.incoming is None:
        raise ConfigError.single(f"connector is used for {settings.use_for} only; it reads no mail",
                                 where=where, field="use_for")
    if not settings.enabled:
        raise ConfigError.single(
            "connector is disabled; enable it (after a successful connection test) before polling it",
            where=where, field="enabled",
        )
    access = access or ConnectorAccess()
    folder = settings.incoming.folder if settings.incoming.protocol == "imap" else "INBOX"
    if mailbox == "additional":
        folder = f"{settings.additional_mailbox}/{folder}"
    options = dict(options)
    options.setdefault("limits", config.limits.parse_limits())
    options.setdefault("acknowledgements_per_hour", config.limits.acknowledgements_per_hour)
    default_from = str(options.pop("ack_from", None) or settings.primary_address)
    own = {a.casefold() for a in config.own_addresses(settings.name)}
    chosen: dict[str, AckRoute] = {}

    def ack_route(address: str) -> AckRoute:
        from_address = address.casefold() if address.casefold() in own else default_from
        route = chosen.get(from_address)
        if route is None:
            outgoing = sending_connector(config, settings, from_address)
            factory: Callable[[], MailSender] | None = None
            if outgoing is not None and outgoing.enabled:
                factory = functools.partial(open_sender, outgoing, access)
            route = chosen[from_address] = AckRoute(from_address, outgoing.name if outgoing else "", factory)
        return route

    options.setdefault("ack_wording", ack_wording(config, connector))
    options.update(
        connector=connector, mailbox=folder, ack_routes=ack_route,
        source_factory=lambda: open_source(settings, access, mailbox=mailbox),
    )
    return options


def ack_wording(config: Config, connector: str) -> AckWording:
    """The acknowledgement templates of ``connector``'s routes and fallback, and ``[linking]``'s token."""
    templates = {route.name: route.acknowledgement for route in config.routes_of(connector)}
    fallback = config.fallback_of(connector).acknowledgement
    default = AckTemplate()

    def template(decision: Decision) -> AckTemplate:
        if decision.fallback:
            return fallback
        return templates.get(decision.route or "", default)

    linking = config.linking
    return AckWording(template, linking.reference_token(), linking.subject_pattern or None)
