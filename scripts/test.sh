#!/usr/bin/env bash
# Set up everything and run the whole test suite. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_uv.sh"
"${UV[@]}" run --locked --no-sync ruff check .
# Types over the whole package (pyproject.toml [tool.mypy]): about 40 s of one core, so it
# runs beside the tests; its verdict is read at the end and printed only when it fails (so
# pytest's summary stays the last line of a passing run).
mypy_log=$(mktemp)
trap 'rm -f "$mypy_log"' EXIT
"${UV[@]}" run --locked --no-sync mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
# The report's browser test uses Debian's Chromium: install it where we may (root, apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "childindex: installing Debian's chromium for the report's browser test" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
set +e
# Two or more workers (pytest-xdist, at most four), a file each at a time: the suite is CPU-bound
# Python, so on 2 cores it takes about half as long. Module-scoped fixtures stay in one worker.
"${UV[@]}" run --locked --no-sync python -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
status=$?
wait "$mypy_pid"
mypy_status=$?
# pytest exits 5 when it collected no test: that is a failure, never a pass.
if [ "$status" -eq 5 ]; then
  echo "childindex: pytest collected no tests" >&2
  exit 1
fi
if [ "$mypy_status" -ne 0 ]; then
  cat "$mypy_log"
  echo "childindex: mypy found type errors (above)" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
