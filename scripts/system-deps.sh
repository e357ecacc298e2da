#!/usr/bin/env bash
# Installs the Debian packages the test suite drives: chromium (browser tests through
# Playwright; Playwright's own browser download does not work offline) and docker-compose
# (only to validate docker-compose.yml; no engine is needed).
# Arguments name a subset (`scripts/system-deps.sh docker-compose` for `make test-fast`, which
# starts no browser); without arguments both are installed.
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(chromium fonts-noto-cjk docker-compose)
missing=()
for package in "${wanted[@]}"; do
  case "$package" in
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    # Chromium draws Chinese (the zh-hans pages and their screenshots) as boxes without a CJK font.
    fonts-noto-cjk) [ -d /usr/share/fonts/opentype/noto ] || missing+=(fonts-noto-cjk) ;;
    docker-compose) command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose) ;;
    *) echo "ERROR: unknown system dependency: $package" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
