"""The ``childindex`` command."""

from childindex.cli.commands import app

__all__ = ["app"]
