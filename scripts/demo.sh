#!/usr/bin/env bash
# Set up everything and run one synthetic night through the real DAGs on embedded defaults.
# Extra arguments go to 'childindex demo' (see 'childindex demo --help').
# The runtime environment only (about 800 MB): no test tools (the dev group, which
# scripts/test.sh installs); --inexact keeps them where a developer has them already.
SYNC_ARGS=(--no-dev --inexact)
source "$(dirname "${BASH_SOURCE[0]}")/_uv.sh"
exec "${UV[@]}" run --locked --no-sync childindex demo "$@"
