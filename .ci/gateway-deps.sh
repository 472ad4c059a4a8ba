#!/usr/bin/env bash
# A Jupyter Enterprise Gateway for tests/server/test_kernel_gateway.py, in its own virtualenv
# (.ci/gateway-venv): it pins old jupyter_server / jupyter_client, which must not meet ours.
# Every version is pinned in .ci/gateway-requirements.txt; the tests start the gateway
# themselves, on loopback. Set ASST_MAGIC_TEST_GATEWAY_PYTHON to use another one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m venv --clear .ci/gateway-venv
.ci/gateway-venv/bin/python -m pip install -q --no-deps -r .ci/gateway-requirements.txt
.ci/gateway-venv/bin/python -m pip check >/dev/null
