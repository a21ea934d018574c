"""``python -m childindex.cli``."""

from childindex.cli.app import main

main()
