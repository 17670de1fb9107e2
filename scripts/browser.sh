#!/usr/bin/env bash
# Install what the dashboard's end-to-end test drives: Debian's chromium and chromedriver (idempotent, quick when
# already there). Without root, the test skips with the reason.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "[browser] chromium/chromedriver missing and not root: the dashboard browser test will skip" >&2
    exit 0
fi
echo "[browser] installing chromium and chromium-driver from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium chromium-driver >&2 || { apt-get update -qq >&2 && apt-get install -y -qq chromium chromium-driver >&2; }
