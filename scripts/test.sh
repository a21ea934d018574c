#!/usr/bin/env bash
# Set up everything and run the whole test suite. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_uv.sh"
"${UV[@]}" run --locked --no-sync ruff check .
set +e
"${UV[@]}" run --locked --no-sync python -m pytest "$@"
status=$?
# pytest exits 5 when it collected no test: that is a failure, never a pass.
if [ "$status" -eq 5 ]; then
  echo "childindex: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
