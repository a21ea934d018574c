"""The ``childindex`` command: a module per command group, one mapping from error to exit code."""

from childindex.cli.main import app, main

__all__ = ["app", "main"]
