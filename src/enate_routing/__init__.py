"""enate_routing: embeddable email routing for ticketing and case-management systems.

Describe connectors and routes in a configuration (:func:`load_config`), parse mail once
(:meth:`Envelope.from_bytes`) and let the compiled router decide what each email creates or joins.
"""

import logging as _logging

from enate_routing._analysis import find_loops, find_shadowed
from enate_routing._certificates import ClientCertificate, load_pkcs12
from enate_routing._decision import Decision, RoutingResult, Trace
from enate_routing._delivery import Delivery
from enate_routing._directory import (
    CompanyDirectory,
    ConfiguredCompanies,
    KnownMessage,
    WorkItemLookup,
)
from enate_routing._envelope import (
    Envelope,
    Recipient,
    RecipientSource,
)
from enate_routing._loading import (
    config_schema,
    dump_config,
    load_config,
    parse_config,
    save_config,
)
from enate_routing._model import (
    BlockedEntry,
    Config,
    Connector,
    Fallback,
    IncomingRoute,
    IncomingServer,
    LimitsSettings,
    Linking,
    OutgoingRoute,
    OutgoingServer,
    RoutingRules,
    Target,
)
from enate_routing._parse_limits import ParseLimits
from enate_routing._patterns import AddressPattern
from enate_routing._router import AcknowledgementAllowed, Router
from enate_routing._version import __version__

__all__ = [
    "AcknowledgementAllowed",
    "AddressPattern",
    "BlockedEntry",
    "ClientCertificate",
    "CompanyDirectory",
    "Config",
    "ConfiguredCompanies",
    "Connector",
    "Decision",
    "Delivery",
    "Envelope",
    "Fallback",
    "IncomingRoute",
    "IncomingServer",
    "KnownMessage",
    "LimitsSettings",
    "Linking",
    "OutgoingRoute",
    "OutgoingServer",
    "ParseLimits",
    "Recipient",
    "RecipientSource",
    "Router",
    "RoutingResult",
    "RoutingRules",
    "Target",
    "Trace",
    "WorkItemLookup",
    "__version__",
    "config_schema",
    "dump_config",
    "find_loops",
    "find_shadowed",
    "load_config",
    "load_pkcs12",
    "parse_config",
    "save_config",
]

# A library never configures logging: without a handler of the host's, the package's records go nowhere.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
