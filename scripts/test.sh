#!/usr/bin/env bash
# The test command: installs what the tests use as independent checkers
# (exiftool, djpeg, ImageMagick, pngcheck, webpinfo, tiffinfo, heif-info), the browser test's Chromium and Node.js with the pinned
# playwright-core, then runs `cargo test`. Safe to run again: each install
# step is skipped when its tool is already there. Extra arguments go to
# `cargo test` (e.g. `bash scripts/test.sh redact`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v exiftool >/dev/null || need_apt+=(libimage-exiftool-perl)
command -v djpeg >/dev/null || need_apt+=(libjpeg-turbo-progs)
command -v heif-convert >/dev/null || need_apt+=(libheif-examples)
# The opt-in `avif-libheif` feature links the system libheif (CI tests it as a cross-check
# of the default pure-Rust `avif-decode`).
pkg-config --exists libheif 2>/dev/null || need_apt+=(libheif-dev pkg-config)
# /usr/bin/convert, not `command -v`: some machines put a stand-in script on the PATH.
[ -x /usr/bin/convert ] && command -v compare >/dev/null || need_apt+=(imagemagick)
command -v pngcheck >/dev/null || need_apt+=(pngcheck)
command -v webpinfo >/dev/null || need_apt+=(webp)
command -v tiffinfo >/dev/null || need_apt+=(libtiff-tools)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v man >/dev/null || need_apt+=(man-db)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test: installing ${need_apt[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# playwright-core, pinned by tests/browser/package-lock.json; it drives the
# system Chromium and never downloads a browser of its own.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

# With everything installed, a missing checker is a failure, not a skip.
export CI="${CI:-true}"
cargo test "$@"
