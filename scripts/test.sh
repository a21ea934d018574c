#!/usr/bin/env bash
# Set up everything and run the whole test suite. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_uv.sh"
"${UV[@]}" run --locked --no-sync ruff check .
# Types over the whole package (pyproject.toml [tool.mypy]).
"${UV[@]}" run --locked --no-sync mypy
# The report's browser test uses Debian's Chromium: install it where we may (root, apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "childindex: installing Debian's chromium for the report's browser test" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
set +e
"${UV[@]}" run --locked --no-sync python -m pytest "$@"
status=$?
# pytest exits 5 when it collected no test: that is a failure, never a pass.
if [ "$status" -eq 5 ]; then
  echo "childindex: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
