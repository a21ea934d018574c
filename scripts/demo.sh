#!/usr/bin/env bash
# Set up everything and run one synthetic night through the real DAGs on embedded defaults.
# Extra arguments go to 'childindex demo' (see 'childindex demo --help').
source "$(dirname "${BASH_SOURCE[0]}")/_uv.sh"
exec "${UV[@]}" run --locked --no-sync childindex demo "$@"
