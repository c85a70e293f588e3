#!/bin/sh
# Installs what the end-to-end browser tests need on a fresh Debian 12, as root:
# Chromium and Firefox ESR from Debian, GStreamer's command-line tools (for the
# fake camera and microphone files), Node.js, and playwright-core from the
# lock file. Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")"

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v firefox-esr >/dev/null 2>&1 || missing="$missing firefox-esr"
command -v gst-launch-1.0 >/dev/null 2>&1 || missing="$missing gstreamer1.0-tools"
gst-inspect-1.0 y4menc >/dev/null 2>&1 || missing="$missing gstreamer1.0-plugins-bad"
gst-inspect-1.0 wavenc >/dev/null 2>&1 || missing="$missing gstreamer1.0-plugins-good"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: need root to install:$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "install.sh: playwright-core needs Node.js >= 20, found $(node --version)" >&2
    exit 1
fi

# playwright-core only: it drives the Debian browsers and downloads none.
npm ci --no-audit --no-fund
