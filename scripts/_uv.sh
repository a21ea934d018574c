# Sourced by the other scripts: make sure uv is available and the locked environment is in place.
# Needs only Python 3.11 with pip; installs uv for the current user when it is absent.
# SYNC_ARGS (a bash array set before sourcing) adds options to 'uv sync': scripts/demo.sh
# leaves out the test tools (the dev group); by default they are installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  echo "childindex: installing uv (python3 -m pip install --user uv)" >&2
  # --user outside a virtualenv; inside one (where --user is refused) into it.
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  UV=(python3 -m uv)
fi
# Trust the platform's certificate store (corporate proxies, custom CAs) as pip does; an
# explicit UV_SYSTEM_CERTS or SSL_CERT_FILE wins. uv older than 0.9 ignores this variable.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"
# --locked: the committed uv.lock is the pin; fail rather than resolve anew.
"${UV[@]}" sync --locked --python 3.11 --quiet ${SYNC_ARGS[@]+"${SYNC_ARGS[@]}"}
