#!/usr/bin/env bash
# Installs the .deb from scripts/package.sh with dpkg, smoke-tests what it put
# on the system, then removes it again (dpkg --purge). Needs root (CI is).
#
#   bash scripts/package.sh && bash scripts/deb-smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deb=$(ls -t target/debian/photodeid_*.deb | head -n1)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
command -v man >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq man-db >/dev/null; }

# Folders the package makes; removed again afterwards only if this test made them.
srv_existed=0; [ -e /srv/photos ] && srv_existed=1
state_existed=0; [ -e /var/lib/photodeid ] && state_existed=1
tmp=$(mktemp -d)
cleanup() {
  $SUDO dpkg --purge photodeid >/dev/null 2>&1 || true
  if [ "$srv_existed" = 0 ]; then
    $SUDO rmdir /srv/photos/inbox /srv/photos/outbox /srv/photos/done /srv/photos/failed /srv/photos 2>/dev/null || true
  fi
  if [ "$state_existed" = 0 ]; then
    $SUDO rmdir /var/lib/photodeid 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "deb-smoke: dpkg -i $deb"
$SUDO dpkg -i "$deb" >/dev/null
fail() { echo "deb-smoke: FAILED: $*" >&2; exit 1; }

[ "$(command -v photodeid)" = /usr/bin/photodeid ] || fail "photodeid is not /usr/bin/photodeid"
[ "$(photodeid --version)" = "photodeid $version" ] || fail "--version says $(photodeid --version)"
man -w photodeid >/dev/null || fail "man -w photodeid"
man -w photodeid-watch >/dev/null || fail "man -w photodeid-watch"
for f in /usr/share/bash-completion/completions/photodeid /usr/share/zsh/vendor-completions/_photodeid \
  /usr/share/fish/vendor_completions.d/photodeid.fish /usr/share/doc/photodeid/README.md; do
  [ -s "$f" ] || fail "$f missing"
done
grep -q 'complete -F _photodeid' /usr/share/bash-completion/completions/photodeid || fail "bash completion"
unit=/usr/lib/systemd/system/photodeid-watch.service
grep -q '^ExecStart=/usr/bin/photodeid watch ' "$unit" || fail "unit ExecStart"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
fi
getent passwd photodeid >/dev/null || fail "no photodeid user"
getent group photodeid >/dev/null || fail "no photodeid group"
for d in inbox outbox done failed; do
  [ "$(stat -c '%U:%G %a' /srv/photos/$d)" = "photodeid:photodeid 2770" ] ||
    fail "/srv/photos/$d is $(stat -c '%U:%G %a' /srv/photos/$d)"
done
[ "$(stat -c '%U %a' /var/lib/photodeid)" = "photodeid 700" ] || fail "/var/lib/photodeid"

# The sample job, with the installed binary.
photodeid clean fixtures/sample -o "$tmp/out" -q
n=$(find "$tmp/out" -type f | wc -l)
[ "$n" -ge 2 ] || fail "the sample job wrote $n files"
photodeid check -q "$tmp/out" || fail "check of the sample job's output"
# The face detector is in the package: it finds the portrait's face, and
# `clean --faces` covers it.
# Output captured, then searched: `| grep -q` under pipefail fails whenever grep
# quits before the writer is done (it did, once, on CI).
said=$(photodeid detect fixtures/faces/astronaut.jpg) || fail "detect exited $?"
grep -q '1 face found' <<<"$said" || fail "detect finds no face: $said"
said=$(photodeid clean fixtures/faces/astronaut.jpg -o "$tmp/face.jpg" --faces 2>&1) || fail "clean --faces exited $?"
grep -q '1 face found' <<<"$said" || fail "clean --faces: $said"
photodeid check -q "$tmp/face.jpg" || fail "check of the --faces output"

$SUDO dpkg -r photodeid >/dev/null
[ ! -e /usr/bin/photodeid ] || fail "dpkg -r left /usr/bin/photodeid"
echo "deb-smoke: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB): --version, man, completions, unit, user, folders, sample job, faces, removal"
