#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of every target in
# fuzz/fuzz_targets, seeded from fixtures/. Each target runs SECONDS seconds
# (default 15); any crash, panic or broken invariant fails the script and
# leaves the input in fuzz/artifacts/<target>/. The corpus grows in
# fuzz/corpus/<target>/ (ignored by git) and is reused by the next run.
#
#   bash scripts/fuzz.sh            # CI: 15 s per target
#   SECONDS_PER_TARGET=3600 JOBS=1 nice -n 19 bash scripts/fuzz.sh clean
#
# Needs cargo-fuzz (installed here when missing, ~2 min) and a nightly
# compiler feature (sanitizer flags): RUSTC_BOOTSTRAP=1 enables it on the
# stable toolchain for this build alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTC_BOOTSTRAP=1
per=${SECONDS_PER_TARGET:-15}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(clean redact collage grammar describe)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

# Seeds: every fixture, behind each option byte the clean target reads
# (hint 0 = sniff, 1..6 = the format's own extension, with and without
# --strip-icc / --orientation apply).
seed() {
  local dir=fuzz/corpus/$1
  mkdir -p "$dir"
  case $1 in
    clean)
      for f in fixtures/dirty/* fixtures/bad/* fixtures/sample/*/* \
        fixtures/heif/* fixtures/tiff/* fixtures/regress/*; do
        [ -f "$f" ] || continue
        for knob in '\x00' '\x08' '\x10'; do
          { printf "$knob"; cat "$f"; } >"$dir/seed-$(basename "$f")-$(printf "$knob" | od -An -tx1 | tr -d ' ')"
        done
      done ;;
    redact)
      for f in fixtures/dirty/* fixtures/sample/*/*; do
        { printf '\x0a\x0a\x32\x32\x00\x02\x00\x00\x00'; cat "$f"; } >"$dir/seed-$(basename "$f")"
      done ;;
    collage)
      # Framing bytes (zoom, centre x, centre y, panel size) before each
      # photo fixture: whole, zoomed at a corner, and zoomed off-centre.
      for f in fixtures/dirty/* fixtures/sample/*/* fixtures/regress/*; do
        [ -f "$f" ] || continue
        for knob in '\x00\x80\x80\x33' '\x10\x00\xff\x21' '\x08\xc0\x40\x57'; do
          { printf "$knob"; cat "$f"; } >"$dir/seed-$(basename "$f")-$(printf "$knob" | od -An -tx1 | tr -d ' ')"
        done
      done ;;
    grammar)
      printf '10,10,50,50' >"$dir/seed-1"
      printf 'ellipse:10%%,5%%,30%%,20%%:pixelate' >"$dir/seed-2"
      printf '# comment\nDoe_Jane/**/*.jpg ellipse:35%%,20%%,30%%,15%%:blur\n*.png 0,0,100%%,10%%:fill\n' >"$dir/seed-3" ;;
    describe)
      # EXIF, XMP and ICC blocks as found in the fixtures (whole files work
      # too: the describers look for their own structures).
      for f in fixtures/dirty/* fixtures/heif/* fixtures/tiff/*; do
        [ -f "$f" ] && cp "$f" "$dir/seed-$(basename "$f")"
      done ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  seed "$t"
  echo "fuzz: $t for ${per}s"
  set +e
  cargo fuzz run -s none -a "$t" "$PWD/fuzz/corpus/$t" -- \
    -max_total_time="$per" -max_len=262144 -rss_limit_mb=2048 -timeout=20 \
    -print_final_stats=1 >"fuzz/$t.log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|SUMMARY' "fuzz/$t.log" | head -20 || true
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc; see fuzz/$t.log and fuzz/artifacts/$t/)"
    tail -40 "fuzz/$t.log"
    status=1
  fi
done
exit $status
