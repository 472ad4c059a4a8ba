#!/bin/sh
# Install what tests/browser/ needs on a fresh Debian machine (run as root).
# Playwright drives Debian's own chromium (/usr/bin/chromium); never `playwright install`.
# The pip side (jupyterlab, playwright) comes from pyproject's `test` extra.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-liberation
/usr/bin/chromium --version
