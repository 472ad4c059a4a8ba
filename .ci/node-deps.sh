#!/usr/bin/env bash
# The openai Node SDK that tests/server/test_node_sdk.py drives the server with, at the
# versions locked in tests/node/package-lock.json. Node.js from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
