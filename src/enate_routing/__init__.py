"""enate_routing: embeddable email routing for ticketing and case-management systems."""

from enate_routing._version import __version__

__all__ = ["__version__"]
