"""Connectors: fetch and transform only; the sync engine does the rest."""

from cmdb.connectors.base import Batch, Connector, Event, Problem, ScopeDone

__all__ = ["Batch", "Connector", "Event", "Problem", "ScopeDone"]
