"""The organisations registry: who sends which extract, from which area, to which folders."""

from childindex.organisations.registry import (
    Area,
    Organisation,
    Registry,
    load_registry,
    parse_registry,
)

__all__ = ["Area", "Organisation", "Registry", "load_registry", "parse_registry"]
