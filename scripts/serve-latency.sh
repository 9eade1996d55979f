#!/usr/bin/env bash
# Preview latency of `photodeid serve` on a 12-megapixel photo: the server
# side with curl, and the page in headless Chromium (tests/browser/run.mjs:
# click → photo shown, mouse released → redacted preview shown).
#
#   bash scripts/serve-latency.sh [PHOTO.jpg]
#   GRID=500 bash scripts/serve-latency.sh [PHOTO.jpg]
#
# With GRID=N it then serves a folder of N copies of the photo (10 per case
# folder) and measures, in Chromium (tests/browser/grid.mjs), the time from
# opening the page to the first screen of thumbnails and to every thumbnail
# (scrolling a screen at a time), the preview latency on one of them (curl), and the
# server's peak memory (VmHWM) and CPU time (user+sys).
#
# Without an argument it uses the 4032x3024 photo of the shared camera corpus
# when it is beside the checkout, else a synthetic 4032x3024 JPEG (python3 +
# cjpeg). NO_BUILD=1 uses target/release/photodeid as it is; BIN=PATH another
# binary (a peer build to compare with, in the same run). Needs curl, node and chromium (as .ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/photos/case"
photo="$work/photos/case/IMG_12mp.jpg"
corpus=../shared/corpus/exif-samples/jpg/tests/42_IndexError.jpg
if [ $# -ge 1 ]; then
  cp "$1" "$photo"
elif [ -f "$corpus" ]; then
  cp "$corpus" "$photo"
else
  python3 - "$work/p.ppm" <<'PY'
import os, sys
w, h = 4032, 3024
with open(sys.argv[1], "wb") as f:
    f.write(b"P6 %d %d 255\n" % (w, h))
    base = bytes((x * 255 // w) if c != 1 else ((x * 7) & 255) for x in range(w) for c in range(3))
    for y in range(h):
        noise = os.urandom(len(base))
        f.write(bytes((b + (y * 255 // h) + (n & 15)) & 255 for b, n in zip(base, noise)))
PY
  cjpeg -quality 90 "$work/p.ppm" > "$photo"
fi

[ -n "${NO_BUILD:-}" ] || [ -n "${BIN:-}" ] || cargo build --release -q
bin=${BIN:-target/release/photodeid}
"$bin" serve "$work/photos" --no-open --port 0 -o "$work/out" > "$work/log" &
pid=$!
for _ in $(seq 50); do grep -q http:// "$work/log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/log")
token=${url##*t=}
base=${url%/?t=*}
hdr="X-Photodeid-Token: $token"
curl -sf -H "$hdr" "$base/api/photos" > /dev/null
echo "server side (curl, seconds):"
curl -sf -o /dev/null -w "  first view (decode, shrink to at most 1600 px, encode): %{time_total}\n" -H "$hdr" "$base/api/photos/0/view"
for i in 1 2 3; do
  curl -sf -o /dev/null -w "  view again: %{time_total}\n" -H "$hdr" "$base/api/photos/0/view"
done
for effect in fill pixelate blur; do
  curl -sf -o /dev/null -w "  preview, one 40% x 40% $effect region: %{time_total}\n" -H "$hdr" \
    -H "Content-Type: application/json" \
    -d '{"regions":[{"x":20,"y":20,"w":40,"h":40,"effect":"'"$effect"'"}]}' \
    "$base/api/photos/0/preview"
done
# A fresh server, so the browser run starts cold too (the grid's thumbnail
# request is then the photo's first decode).
kill "$pid"; wait "$pid" 2>/dev/null || true
"$bin" serve "$work/photos" --no-open --port 0 -o "$work/out" > "$work/log" &
pid=$!
for _ in $(seq 50); do grep -q http:// "$work/log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/log")
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
mkdir -p target/browser-artifacts
echo "in Chromium (ms; openMs: click → photo shown, editMs: mouse released → redacted preview shown):"
(cd tests/browser && EXPORT=0 KEYBOARD=0 node run.mjs "$url" IMG_12mp.jpg \
  ../../target/browser-artifacts/latency-12mp.png 5) |
  python3 -c 'import json, sys
for t in json.load(sys.stdin)["timings"]:
    print("  openMs %4d  editMs %4d" % (t["openMs"], t["editMs"]))'

[ "${GRID:-0}" -gt 0 ] || exit 0
kill "$pid"; wait "$pid" 2>/dev/null || true
pid=""
for i in $(seq 0 $((GRID - 1))); do
  d="$work/grid/case-$(printf %02d $((i / 10)))"
  mkdir -p "$d"
  cp "$photo" "$d/IMG_$(printf %04d "$i").jpg"
done
sync
"$bin" serve "$work/grid" --no-open --port 0 -o "$work/grid-out" > "$work/log" &
pid=$!
for _ in $(seq 50); do grep -q http:// "$work/log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$work/log")
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat"; }
echo "grid of $GRID photos ($(du -sh "$work/grid" | cut -f1)); load: $(cut -d' ' -f1-3 /proc/loadavg)"
(cd tests/browser && node grid.mjs "$url") | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("  listed %d ms; first screen (%d thumbnails) %d ms; all %d thumbnails %d ms" % (
    r["listedMs"], r["firstScreenCount"], r["firstScreenMs"], r["count"], r["allMs"]))'
echo "  server CPU after the grid: $(cpu) s (user+sys); load: $(cut -d' ' -f1-3 /proc/loadavg)"
# Previews on a photo of the big folder once its grid is loaded (run.mjs
# waits for every thumbnail, which lazy loading never fetches all of here).
token=${url##*t=}
base=${url%/?t=*}
hdr="X-Photodeid-Token: $token"
curl -sf -o /dev/null -w "  first view of photo 5 (decode, shrink): %{time_total}\n" -H "$hdr" "$base/api/photos/5/view"
for i in 1 2 3; do
  curl -sf -o /dev/null -w "  preview, one 40% x 40% fill region: %{time_total}\n" -H "$hdr" \
    -H "Content-Type: application/json" \
    -d '{"regions":[{"x":20,"y":20,"w":40,"h":'"$((30 + i))"',"effect":"fill"}]}' \
    "$base/api/photos/5/preview"
done
echo "  server peak memory: $(grep VmHWM "/proc/$pid/status" | awk '{print $2 / 1024 " MB"}'); now: $(grep VmRSS "/proc/$pid/status" | awk '{print $2 / 1024 " MB"}')"
echo "  server CPU in all: $(cpu) s (user+sys); load: $(cut -d' ' -f1-3 /proc/loadavg)"
