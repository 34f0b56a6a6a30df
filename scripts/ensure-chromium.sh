#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/ui), which
# drive it with Playwright through executable_path=/usr/bin/chromium. Installs the
# Debian package with apt-get only when it is missing; never downloads a browser
# build of its own (`playwright install` is never run).
set -euo pipefail

log() { printf '[chromium] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

if [ -x /usr/bin/chromium ]; then
  log "chromium is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "apt-get not found: install Debian's chromium by hand"; exit 1
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
log "installing chromium"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { log "chromium did not install at /usr/bin/chromium"; exit 1; }
log "chromium is installed"
