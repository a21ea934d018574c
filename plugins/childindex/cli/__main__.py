"""``python -m childindex.cli``."""

from childindex.cli.main import main

main()
