#!/usr/bin/env bash
# End-to-end benchmark of `photodeid clean` against its peers, on one folder
# of 12-megapixel photo-like JPEGs that carry identifying metadata.
#
#   bash scripts/bench.sh                 (run from anywhere; no arguments)
#
# Environment overrides:
#   BENCH_FILES=96        number of 4000x3000 JPEGs in the corpus (~1.9 MB each)
#   PHOTODEID=path        binary to time (default: target/release/photodeid,
#                         built with `cargo build --release` if missing)
#   BENCH_RUNS=5          hyperfine --runs
#   BENCH_WARMUP=1        hyperfine --warmup
#   BENCH_CORPUS_DIR=dir  where corpora are cached (default target/bench-corpus)
#   BENCH_RESULTS_DIR=dir where results go (default target/bench-results)
#   BENCH_WORK_DIR=dir    scratch output folders (default target/bench-work)
#   BENCH_ONLY="clean thorough redact collage"  which benches to run (default: all four;
#                         "tiff" is opt-in: BENCH_ONLY=tiff, or "clean tiff")
#   BENCH_TIFF_FILES=4    12 MP 16-bit RGB TIFFs (72 MB each) in the tiff bench,
#                         which also times one 50-page 8-bit gray scan (109 MB)
#                         "heif" adds the optional HEIC bench: BENCH_HEIF_FILES=6 distinct
#                         12 MP heif-enc HEICs (Exif/thumbnail, alpha, second image) and
#                         the real phone HEIFs, see bench_heif)
#   BENCH_ONLY=... faces  the faces bench (default: part of the run)
#   BENCH_ONLY=progressive  check/clean --thorough on progressive copies of the corpus vs
#                         djpeg and jpegtran -copy none, one core (opt-in)
#   BENCH_ONLY=strip      the lossless strip at the floor (opt-in): an ImageMagick
#                         q92 4:4:4 corpus and the q90 4:2:0 one, vs exiftool and
#                         cp -r, medians, 1 -> 2 thread scaling, peak RSS
#                         (BENCH_STRIP_FILES, default BENCH_FILES)
#   BENCH_COLLAGE_POST_ONLY=1  BENCH_ONLY=collage runs only the posting collage (1080x1350)
#   BENCH_FACES=8         photos in the faces corpus (12 MP, one public-domain face each)
#   BENCH_ONLY=dctedit    the region edit at its floor (opt-in): clean -j 1 --region vs
#                         jpegtran -copy none vs convert -region -blur, per file, one
#                         thread, on the 4:4:4 q92 and 4:2:0 q90 corpora (BENCH_FILES=8)
#   BENCH_ONLY=shard      sharded runs (opt-in): 4 concurrent `clean --shard K/4` vs one
#                         `clean` with the same threads in total, on the 12 MP corpus; then
#                         `plan` of a 1,000,000-entry tree and `merge` of a million-line run
#                         (time and peak RSS). BENCH_SHARD_TREE=1000000 entries (0: skip);
#                         BENCH_SHARD_ARGS="--region 10%,10%,30%,30%" adds clean options to all three.
#
# What it does:
#   1. Builds (once; cached by file count and generator version) a corpus of
#      deterministic synthetic photos: smooth gradients, texture, shapes and
#      noise, `cjpeg -quality 90` (4:2:0), then exiftool injects GPS, Artist,
#      serial numbers, dates, a 160x120 EXIF thumbnail, XMP, IPTC and a COM.
#   2. Times, on the same page-cached folder, with hyperfine:
#        photodeid clean (all cores), photodeid clean -j 1,
#        exiftool -all= -o OUT/ (the usual manual scrub), cp -r (the floor).
#   3. Measures peak RSS (and CPU use) of each with /usr/bin/time -v.
#   4. Runs the later benches (region redaction vs ImageMagick mogrify,
#      collage vs montage) when this photodeid has those features; otherwise
#      prints "skipped: feature not built".
#
# Requirements: bash, python3, hyperfine, exiftool, cjpeg/djpeg
# (libjpeg-turbo-progs), GNU time (installed with apt-get when missing), and for
# the redact/collage peers ImageMagick (installed with apt-get when missing,
# else that peer is skipped). Everything pixel-wise is synthetic: no real data.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

N="${BENCH_FILES:-96}"
RUNS="${BENCH_RUNS:-5}"
WARMUP="${BENCH_WARMUP:-1}"
CORPUS_BASE="${BENCH_CORPUS_DIR:-$ROOT/target/bench-corpus}"
RESULTS="${BENCH_RESULTS_DIR:-$ROOT/target/bench-results}"
WORK="${BENCH_WORK_DIR:-$ROOT/target/bench-work}"
GEN_VERSION=1
# BENCH_CJPEG="-quality 92 -sample 1x1": the corpus's encoder options (default
# 4:2:0 q90); a corpus of its own for each.
CJPEG_ARGS="${BENCH_CJPEG:--quality 90}"
CORPUS="$CORPUS_BASE/v${GEN_VERSION}-n${N}"
if [[ -n "${BENCH_CJPEG:-}" ]]; then CORPUS="$CORPUS-$(printf '%s' "$CJPEG_ARGS" | tr -c 'a-z0-9' '_')"; fi
OUT="$WORK/out"
JOBS="$(nproc)"

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench: $*" >&2; exit 1; }
q() { printf '%q' "$1"; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "BENCH_FILES must be a positive integer (got '$N')"

# ------------------------------------------------------------------ tools --
SUDO=()
if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if ! DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1; then
        if [[ $APT_UPDATED == 0 ]]; then
            APT_UPDATED=1
            "${SUDO[@]}" apt-get update -qq >/dev/null 2>&1 || return 1
        fi
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1 || return 1
    fi
}

for tool in python3 hyperfine exiftool cjpeg djpeg; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

# The peers as the distribution installs them: a `convert` earlier on the
# PATH than /usr/bin's (a wrapper script, a shim) would time its own start
# too and flatter photodeid.
if [[ -x /usr/bin/convert && "$(command -v convert 2>/dev/null)" != /usr/bin/convert ]]; then
    say "peers: /usr/bin first on the PATH (the PATH's convert is $(command -v convert || echo none))"
    PATH="/usr/bin:$PATH"
fi

if [[ -n "${PHOTODEID:-}" ]]; then
    BIN="$PHOTODEID"
    [[ -x "$BIN" ]] || die "PHOTODEID=$BIN is not an executable"
else
    BIN="$ROOT/target/release/photodeid"
    if [[ ! -x "$BIN" ]]; then
        say "building $BIN"
        cargo build --release
    fi
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

mkdir -p "$CORPUS_BASE" "$RESULTS" "$WORK"

# ----------------------------------------------------------------- corpus --
# Pure-python generator (numpy not needed): every row is a shifted slice of a
# long 1-D colour profile, re-mapped by a per-row tone table (bytes.translate),
# with ellipses re-mapped by their own tables, plus uniform noise added through
# big-integer arithmetic. All in C-speed primitives: ~0.5 s per 12 MP image.
write_generator() {
    cat >"$1" <<'PYEOF'
import math, random, sys

def gen(out, w, h, seed, amp):
    rnd = random.Random(seed)
    L = w + 2 * h // 3 + 16                      # profile longer than a row
    comps = [[(rnd.uniform(0.5, 6.0) * 2 * math.pi / L, rnd.uniform(0, 6.3), rnd.uniform(10, 40))
              for _ in range(4)] for _ in range(3)]
    tex = [(rnd.uniform(40, 400) * 2 * math.pi / L, rnd.uniform(0, 6.3), rnd.uniform(2, 8))
           for _ in range(3)]
    base = [rnd.uniform(80, 140) for _ in range(3)]
    prof = bytearray(3 * L)
    for x in range(L):
        t = sum(a * math.sin(f * x + p) for f, p, a in tex)
        for c in range(3):
            v = base[c] + t + sum(a * math.sin(f * x + p) for f, p, a in comps[c])
            prof[3 * x + c] = max(0, min(255, int(v)))
    prof = bytes(prof)
    ntab = bytes(i % amp for i in range(256))    # noise in [0, amp)
    cap = 255 - (amp - 1)                        # so pixel + noise never carries

    def table(gain, off):
        return bytes(max(0, min(cap, int(i * gain + off))) for i in range(256))

    shapes = [(rnd.uniform(0, w), rnd.uniform(0, h), rnd.uniform(w * .04, w * .2),
               rnd.uniform(h * .04, h * .2), rnd.uniform(.4, 1.3), rnd.uniform(-40, 60))
              for _ in range(7)]
    stabs = [table(g, o) for *_, g, o in shapes]
    vf = [(rnd.uniform(.5, 3) * 2 * math.pi / h, rnd.uniform(0, 6.3), rnd.uniform(.05, .2))
          for _ in range(2)]
    sf = (rnd.uniform(.5, 2) * 2 * math.pi / h, rnd.uniform(0, 6.3), rnd.uniform(h * .05, h * .2))
    rowtabs = {}
    out.write(b'P6\n%d %d\n255\n' % (w, h))
    for y in range(h):
        gain = 0.85 + sum(a * math.sin(fr * y + p) for fr, p, a in vf)
        key = (round(gain, 2), round(30.0 * y / h - 15))
        tab = rowtabs.get(key)
        if tab is None:
            tab = rowtabs[key] = table(*key)
        shift = int(sf[2] * (1 + math.sin(sf[0] * y + sf[1])) + y // 3) % (L - w)
        src = prof[3 * shift:3 * (shift + w)]
        row = bytearray(src.translate(tab))
        for (cx, cy, rx, ry, _, _), st in zip(shapes, stabs):
            dy = (y - cy) / ry
            if -1 < dy < 1:
                dx = rx * math.sqrt(1 - dy * dy)
                x0, x1 = max(0, int(cx - dx)), min(w, int(cx + dx))
                if x1 > x0:
                    row[3 * x0:3 * x1] = src[3 * x0:3 * x1].translate(st)
        noise = rnd.randbytes(3 * w).translate(ntab)
        out.write((int.from_bytes(row, 'little') + int.from_bytes(noise, 'little')).to_bytes(3 * w, 'little'))

if __name__ == '__main__':
    w, h, seed, amp = (int(a) for a in sys.argv[1:5])
    with open(sys.stdout.fileno(), 'wb', closefd=False) as f:
        gen(f, w, h, seed, amp)
PYEOF
}

# One exiftool -execute block per file (one exiftool process for the lot).
write_exif_args() { # <dir> <thumb> <argfile>
    local dir="$1" thumb="$2" argfile="$3" f i=0
    : >"$argfile"
    for f in "$dir"/*.jpg; do
        i=$((i + 1))
        local id
        id="$(printf '%04d' "$i")"
        cat >>"$argfile" <<EOF
-Make=BenchCam
-Model=BenchCam Z9 Clinic Edition
-Artist=Bench Patient $id
-Copyright=Bench Hospital Dermatology
-ImageDescription=MRN-BENCH-$id left forearm lesion
-UserComment=Patient Bench $id, DOB 1970-01-01
-SerialNumber=SN-BENCH-$id
-LensSerialNumber=LSN-BENCH-$id
-DateTimeOriginal=2023:05:06 07:08:$(printf '%02d' $((i % 60)))
-CreateDate=2023:05:06 07:08:$(printf '%02d' $((i % 60)))
-GPSLatitude=48.8$id
-GPSLatitudeRef=N
-GPSLongitude=2.29$id
-GPSLongitudeRef=E
-GPSAltitude=35
-GPSAltitudeRef=Above Sea Level
-ThumbnailImage<=$thumb
-XMP-dc:Creator=Bench Patient $id
-XMP-dc:Description=MRN-BENCH-$id
-XMP-xmp:Label=XMP-BENCH-$id
-XMP-photoshop:City=Paris
-IPTC:By-line=Bench Patient $id
-IPTC:Caption-Abstract=MRN-BENCH-$id
-IPTC:Keywords=dermatology
-IPTC:City=Paris
-Comment=Patient Bench $id MRN-BENCH-$id
$f
-execute
EOF
    done
}

make_corpus() {
    if [[ -f "$CORPUS/.complete" ]]; then
        local have
        have="$(find "$CORPUS" -maxdepth 1 -name '*.jpg' | wc -l)"
        if [[ "$have" == "$N" ]]; then
            say "corpus: reusing $CORPUS ($N files)"
            return
        fi
    fi
    say "corpus: generating $N x 4000x3000 JPEGs in $CORPUS"
    local tmp="$CORPUS.tmp"
    rm -rf "$tmp" "$CORPUS"
    mkdir -p "$tmp/.gen"
    write_generator "$tmp/.gen/gen.py"
    # Distinct seed per file; generation + encode runs in parallel.
    seq -f '%04g' 1 "$N" | xargs -P "$JOBS" -I{} bash -c \
        'set -o pipefail; python3 "$0/.gen/gen.py" 4000 3000 "$((10#{}))" 12 | cjpeg $1 >"$0/IMG_{}.jpg"' "$tmp" "$CJPEG_ARGS"
    python3 "$tmp/.gen/gen.py" 160 120 0 12 | cjpeg -quality 75 >"$tmp/.gen/thumb.jpg"
    write_exif_args "$tmp" "$tmp/.gen/thumb.jpg" "$tmp/.gen/exif.args"
    exiftool -q -q -@ "$tmp/.gen/exif.args" -common_args -overwrite_original >/dev/null
    # Spot-check the first file carries everything we meant to inject.
    local probe
    probe="$(exiftool -s -s -s -GPSLatitude -Artist -SerialNumber -ThumbnailLength \
        -XMP-xmp:Label -IPTC:By-line -Comment -ImageWidth -ImageHeight "$tmp/IMG_0001.jpg" | wc -l)"
    [[ "$probe" == 9 ]] || die "corpus: metadata injection incomplete ($probe/9 tags found)"
    rm -rf "$tmp/.gen"
    mv "$tmp" "$CORPUS"
    touch "$CORPUS/.complete"
}

# The JPEG corpus is only made for the benches that use it (BENCH_ONLY=tiff skips it).
if [[ " ${BENCH_ONLY:-clean redact collage} " =~ \ (clean|thorough|redact|collage|shard|heif|progressive)\  ]]; then
    make_corpus
    BYTES="$(find "$CORPUS" -maxdepth 1 -name '*.jpg' -printf '%s\n' | awk '{s+=$1} END {print s}')"
    awk -v n="$N" -v b="$BYTES" -v d="$CORPUS" 'BEGIN {
        printf "corpus: %d files, %d bytes (%.1f MB, %.2f MB/file), dir %s\n", n, b, b / 1e6, b / 1e6 / n, d }'
fi

warm_cache() { cat "$CORPUS"/*.jpg >/dev/null; }

# ---------------------------------------------------------------- helpers --
# report <json> <bytes> [A/B ...]: table of means, MB/s, and the named ratios.
report() {
    python3 - "$@" <<'PYEOF'
import json, sys
path, nbytes, ratios = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = {r['command']: r for r in json.load(open(path))['results']}
w = max(len(k) for k in res)
cpu = lambda r: r['user'] + r['system']
print(f"{'command':<{w}}  {'mean [s]':>9}  {'± sd':>7}  {'min [s]':>8}  {'MB/s':>8}  {'cpu [s]':>8}")
for k, r in res.items():
    print(f"{k:<{w}}  {r['mean']:9.3f}  {r['stddev'] or 0:7.3f}  {r['min']:8.3f}  {nbytes / 1e6 / r['mean']:8.1f}  {cpu(r):8.3f}")
for spec in ratios:
    a, b = spec.split('/')
    if a in res and b in res:
        print(f"ratio {a} / {b} = {res[a]['mean'] / res[b]['mean']:.2f}x "
              f"(CPU user+sys {cpu(res[a]) / cpu(res[b]):.2f}x)")
PYEOF
}

# hf <name> <prepare> (-n NAME CMD)... : hyperfine with exports into $RESULTS.
hf() {
    local name="$1" prepare="$2"
    shift 2
    hyperfine --warmup "$WARMUP" --runs "$RUNS" --prepare "$prepare" \
        --export-markdown "$RESULTS/$name.md" --export-json "$RESULTS/$name.json" "$@"
}

count_out() { find "$1" -type f -name '*.jp*g' | wc -l; }

# rss <label> <cmd...>: one run under GNU time -v; prints peak RSS and CPU use.
HAVE_TIME=1
if ! /usr/bin/time -v true >/dev/null 2>&1; then
    apt_install time || true
    /usr/bin/time -v true >/dev/null 2>&1 || HAVE_TIME=0
fi
rss() {
    local label="$1"
    shift
    rm -rf "$OUT"
    local log="$RESULTS/time-v-${label//[^A-Za-z0-9_.-]/_}.txt"
    /usr/bin/time -v "$@" >/dev/null 2>"$log"
    awk -v l="$label" -F': ' '
        /Maximum resident set size/ { rss = $2 }
        /Elapsed \(wall clock\)/    { wall = $2 }
        /Percent of CPU/            { cpu = $2 }
        /User time/                 { u = $2 }
        /System time/               { s = $2 }
        /File system outputs/       { fo = $2 }
        END { printf "%-28s peak RSS %7.1f MiB   wall %s   CPU %s (user %ss, sys %ss)\n", l, rss / 1024, wall, cpu, u, s }' "$log"
}

# ImageMagick for the peers: prefers IM7 `magick`, then IM6 binaries; installs
# the Debian package when missing. Sets MOGRIFY / MONTAGE arrays.
MOGRIFY=()
MONTAGE=()
ensure_imagemagick() {
    local try
    for try in 1 2; do
        if command -v magick >/dev/null 2>&1 && magick -version 2>/dev/null | grep -q '^Version: ImageMagick'; then
            MOGRIFY=(magick mogrify)
            MONTAGE=(magick montage)
            return 0
        fi
        if command -v mogrify >/dev/null 2>&1 && mogrify -version 2>/dev/null | grep -q '^Version: ImageMagick'; then
            MOGRIFY=(mogrify)
            MONTAGE=(montage)
            return 0
        fi
        [[ $try == 1 ]] || break
        echo "ImageMagick not found; trying apt-get install imagemagick"
        apt_install imagemagick || break
    done
    return 1
}

# ------------------------------------------------------------ clean bench --
bench_clean() {
    say "clean: sanity run"
    warm_cache
    rm -rf "$OUT"
    "$BIN" clean "$CORPUS" -o "$OUT" -q
    [[ "$(count_out "$OUT")" == "$N" ]] || die "photodeid wrote $(count_out "$OUT") files, expected $N"
    rm -rf "$OUT"
    exiftool -q -q -all= -o "$OUT/" "$CORPUS"/*.jpg
    [[ "$(count_out "$OUT")" == "$N" ]] || die "exiftool wrote $(count_out "$OUT") files, expected $N"
    rm -rf "$OUT"

    say "clean: hyperfine (warmup $WARMUP, runs $RUNS, $JOBS cores)"
    local c o
    c="$(q "$CORPUS")"
    o="$(q "$OUT")"
    hf clean "rm -rf $o" \
        -n "photodeid" "$(q "$BIN") clean $c -o $o" \
        -n "photodeid -j 1" "$(q "$BIN") clean $c -o $o -j 1" \
        -n "exiftool" "exiftool -all= -o $o/ $c/*.jpg" \
        -n "cp -r" "cp -r $c $o"

    say "clean: summary ($N files, $((BYTES / 1000000)) MB)"
    report "$RESULTS/clean.json" "$BYTES" "photodeid/cp -r" "photodeid -j 1/cp -r" \
        "exiftool/photodeid" "photodeid -j 1/photodeid" | tee "$RESULTS/clean-summary.txt"

    say "clean: peak memory and CPU (/usr/bin/time -v, one run each)"
    if [[ $HAVE_TIME == 1 ]]; then
        {
            rss "photodeid" "$BIN" clean "$CORPUS" -o "$OUT"
            rss "photodeid -j 1" "$BIN" clean "$CORPUS" -o "$OUT" -j 1
            rss "exiftool" sh -c "exiftool -all= -o $o/ $c/*.jpg"
            rss "cp -r" cp -r "$CORPUS" "$OUT"
        } | tee -a "$RESULTS/clean-summary.txt"
    else
        echo "skipped: GNU time not available (apt-get install time failed)"
    fi
    rm -rf "$OUT"
}

# -------------------------------------------------------- thorough bench --
# clean --thorough (coefficient-level transcode) vs `jpegtran -copy none`
# (libjpeg's own lossless transcode) on the same files, one core each and
# all cores (jpegtran run by xargs -P), and the default clean for scale.
bench_thorough() {
    command -v jpegtran >/dev/null 2>&1 || { echo "skipped: jpegtran missing"; return 0; }
    say "thorough: sanity run"
    warm_cache
    rm -rf "$OUT"
    "$BIN" clean "$CORPUS" -o "$OUT" -q --thorough
    [[ "$(count_out "$OUT")" == "$N" ]] || die "photodeid --thorough wrote $(count_out "$OUT") files"
    rm -rf "$OUT"
    local c o jt
    c="$(q "$CORPUS")"
    o="$(q "$OUT")"
    jt="ls $c/*.jpg | xargs -I{} -P"
    say "thorough: hyperfine (warmup $WARMUP, runs $RUNS)"
    hf thorough "rm -rf $o && mkdir -p $o" \
        -n "photodeid --thorough -j 1" "$(q "$BIN") clean $c -o $o --thorough -j 1" \
        -n "jpegtran -copy none, 1 core" "$jt 1 sh -c 'jpegtran -copy none -outfile $o/\$(basename {}) {}'" \
        -n "photodeid --thorough" "$(q "$BIN") clean $c -o $o --thorough" \
        -n "jpegtran -copy none, $JOBS cores" "$jt $JOBS sh -c 'jpegtran -copy none -outfile $o/\$(basename {}) {}'" \
        -n "photodeid" "$(q "$BIN") clean $c -o $o"
    report "$RESULTS/thorough.json" "$BYTES" \
        "photodeid --thorough -j 1/jpegtran -copy none, 1 core" \
        "photodeid --thorough/jpegtran -copy none, $JOBS cores" \
        "photodeid --thorough/photodeid" | tee "$RESULTS/thorough-summary.txt"
    rm -rf "$OUT"
}

# ----------------------------------------------------------- redact bench --
# photodeid --region vs ImageMagick mogrify (decode, blur region, encode) vs a
# plain djpeg|cjpeg round trip of every file (the decode+encode floor).
bench_redact() {
    say "redact"
    if ! "$BIN" clean --help 2>/dev/null | grep -q -- '--region'; then
        echo "redact: skipped: feature not built"
        return 0
    fi
    local c o floor
    c="$(q "$CORPUS")"
    o="$(q "$OUT")"
    floor="$WORK/djpeg-cjpeg.sh"
    cat >"$floor" <<'EOF'
#!/usr/bin/env bash
# <corpus> <out> [jobs]: djpeg | cjpeg -quality 90 every JPEG, in parallel.
set -euo pipefail
mkdir -p "$2"
find "$1" -maxdepth 1 -name '*.jpg' -print0 |
    xargs -0 -P "${3:-$(nproc)}" -I{} bash -c 'set -o pipefail; djpeg "$1" | cjpeg -quality 90 >"$2/${1##*/}"' _ {} "$2"
EOF
    chmod +x "$floor"
    warm_cache
    local jt="ls $c/*.jpg | xargs -I{} -P"
    local cmds=(
        -n "photodeid --region" "$(q "$BIN") clean $c -o $o --region 1500,500,1000,800"
        -n "djpeg|cjpeg -P $JOBS" "$(q "$floor") $c $o $JOBS"
        -n "photodeid --region -j 1" "$(q "$BIN") clean $c -o $o --region 1500,500,1000,800 -j 1"
        -n "jpegtran -copy none, 1 core" "$jt 1 sh -c 'jpegtran -copy none -outfile $o/\$(basename {}) {}'"
        -n "jpegtran -copy none, $JOBS cores" "$jt $JOBS sh -c 'jpegtran -copy none -outfile $o/\$(basename {}) {}'"
    )
    # Sanity: each command must succeed once before it is timed.
    rm -rf "$OUT"
    "$BIN" clean "$CORPUS" -o "$OUT" -q --region 1500,500,1000,800
    rm -rf "$OUT"
    "$floor" "$CORPUS" "$OUT" "$JOBS"
    if ensure_imagemagick; then
        rm -rf "$OUT" && mkdir -p "$OUT"
        if "${MOGRIFY[@]}" -path "$OUT" -strip -region 1000x800+1500+500 -blur 0x25 "$CORPUS/IMG_0001.jpg"; then
            cmds+=(-n "mogrify" "${MOGRIFY[*]} -path $o -strip -region 1000x800+1500+500 -blur 0x25 $c/*.jpg")
        else
            echo "redact: mogrify failed on one file; skipping that peer"
        fi
    else
        echo "redact: skipped peer mogrify: ImageMagick not available"
    fi
    rm -rf "$OUT"
    hf redact "rm -rf $o && mkdir -p $o" "${cmds[@]}"
    report "$RESULTS/redact.json" "$BYTES" "photodeid --region/djpeg|cjpeg -P $JOBS" \
        "photodeid --region -j 1/jpegtran -copy none, 1 core" \
        "photodeid --region/jpegtran -copy none, $JOBS cores" \
        "mogrify/photodeid --region" | tee "$RESULTS/redact-summary.txt"
    if [[ $HAVE_TIME == 1 ]]; then
        rss "photodeid --region" "$BIN" clean "$CORPUS" -o "$OUT" --region 1500,500,1000,800 |
            tee -a "$RESULTS/redact-summary.txt"
    fi
    rm -rf "$OUT"
}

# ---------------------------------------------------------- dctedit bench --
# Opt-in (BENCH_ONLY=dctedit): the DCT-domain region edit at its floor
# (issue 18), one file at a time on one thread, on the q92 4:4:4 corpus
# (make_corpus_444) and the q90 4:2:0 one: `photodeid clean -j 1 --region`
# vs `jpegtran -copy none` (an entropy decode and encode of the whole scan,
# the edit's natural floor) vs ImageMagick `convert -region ... -blur` (one
# thread: MAGICK_THREAD_LIMIT=1). Interleaved rounds (every command once a
# round, BENCH_RUNS rounds after one warmup round), medians per file.
# BENCH_FILES=8 keeps both corpora under ~5 minutes on a loaded 2-core machine.
dctedit_one() { # <label> <corpus dir>
    local label="$1" dir="$2" c o n region="1500,500,1000,800" geom="1000x800+1500+500"
    n="$(find "$dir" -maxdepth 1 -name '*.jpg' | wc -l)"
    cat "$dir"/*.jpg >/dev/null
    c="$(q "$dir")"
    o="$(q "$OUT")"
    rm -rf "$OUT"
    "$BIN" clean "$dir" -o "$OUT" -q -j 1 --region "$region"
    [[ "$(count_out "$OUT")" == "$n" ]] || die "dctedit: photodeid wrote $(count_out "$OUT") files, expected $n"
    local cmds=(
        -n "photodeid -j 1 --region" "$(q "$BIN") clean -q $c -o $o -j 1 --region $region"
        -n "jpegtran -copy none" "for f in $c/*.jpg; do jpegtran -copy none -outfile $o/\${f##*/} \$f; done"
    )
    local im=""
    if command -v convert >/dev/null 2>&1; then
        im="convert -region -blur"
        cmds+=(-n "$im" "for f in $c/*.jpg; do MAGICK_THREAD_LIMIT=1 convert \$f -region $geom -blur 0x25 $o/\${f##*/}; done")
    else
        echo "dctedit: skipped peer convert: ImageMagick not available"
    fi
    say "dctedit $label: $n files; $RUNS interleaved rounds (load: $(uptime | sed 's/.*load/load/'))"
    local r js=()
    for ((r = 0; r <= RUNS; r++)); do
        hyperfine --runs 1 --prepare "rm -rf $o && mkdir -p $o" \
            --export-json "$RESULTS/dctedit-$label-$r.json" "${cmds[@]}" >/dev/null
        [[ $r == 0 ]] || js+=("$RESULTS/dctedit-$label-$r.json")
    done
    local pd jt imt=""
    pd="$(median "photodeid -j 1 --region" "${js[@]}")"
    jt="$(median "jpegtran -copy none" "${js[@]}")"
    [[ -z "$im" ]] || imt="$(median "$im" "${js[@]}")"
    {
        echo "dctedit $label ($n files, region $region; load after: $(uptime | sed 's/.*load/load/'))"
        awk -v pd="$pd" -v jt="$jt" -v im="$imt" -v n="$n" 'BEGIN {
            printf "  per file, one thread (medians): photodeid %.3f s, jpegtran -copy none %.3f s", pd / n, jt / n
            if (im != "") printf ", convert -region -blur %.3f s", im / n
            printf "\n  photodeid / jpegtran = %.2fx (goal <= 1.1x)", pd / jt
            if (im != "") printf "; convert / photodeid = %.1fx (goal >= 15x)", im / pd
            printf "\n" }'
        echo "  CPU (user + system) medians: photodeid $(cpu "photodeid -j 1 --region" "${js[@]}") s, jpegtran $(cpu "jpegtran -copy none" "${js[@]}") s"
        if [[ $HAVE_TIME == 1 ]]; then
            rss "photodeid -j 1 --region ($label)" "$BIN" clean -q "$dir" -o "$OUT" -j 1 --region "$region"
        fi
    } | tee "$RESULTS/dctedit-$label-summary.txt"
    rm -rf "$OUT"
}

bench_dctedit() {
    local d444="$CORPUS_BASE/strip444-v1-n$N"
    make_corpus_444 "$d444" "$N"
    dctedit_one "444q92" "$d444"
    make_corpus
    dctedit_one "420q90" "$CORPUS"
}

# ---------------------------------------------------------- collage bench --
# photodeid collage of three photos vs ImageMagick montage scaled to the same
# output width (3 tiles of W/3-16 px plus an 8 px border on each side).
bench_collage() {
    say "collage"
    if ! "$BIN" collage --help >/dev/null 2>&1; then
        echo "collage: skipped: feature not built"
        return 0
    fi
    local a="$CORPUS/IMG_0001.jpg" b="$CORPUS/IMG_0002.jpg" cc="$CORPUS/IMG_0003.jpg"
    local dir="$WORK/collage"
    rm -rf "$dir" && mkdir -p "$dir"
    warm_cache
    if [[ "${BENCH_COLLAGE_POST_ONLY:-0}" == 1 ]]; then
        bench_collage_post "$a" "$b" "$cc" "$dir"
        return 0
    fi
    "$BIN" collage "$a" "$b" "$cc" -o "$dir/case.jpg"
    local width tile
    width="$(exiftool -s -s -s -ImageWidth "$dir/case.jpg")"
    [[ "$width" =~ ^[0-9]+$ ]] || die "collage: cannot read output width"
    tile=$((width / 3 - 16))
    echo "collage: photodeid output is ${width}px wide; montage tiles ${tile}px + 8px borders"
    local qa qb qc qd
    qa="$(q "$a")"; qb="$(q "$b")"; qc="$(q "$cc")"; qd="$(q "$dir")"
    local cmds=(-n "photodeid collage" "$(q "$BIN") collage $qa $qb $qc -o $qd/case.jpg")
    if ensure_imagemagick; then
        if "${MONTAGE[@]}" -label '%f' "$a" "$b" "$cc" -tile 3x1 -geometry "${tile}x+8+8" "$dir/montage.jpg"; then
            cmds+=(-n "montage" "${MONTAGE[*]} -label '%f' $qa $qb $qc -tile 3x1 -geometry ${tile}x+8+8 $qd/montage.jpg")
        else
            echo "collage: montage failed; skipping that peer"
        fi
    else
        echo "collage: skipped peer montage: ImageMagick not available"
    fi
    hf collage "rm -f $qd/case.jpg $qd/montage.jpg" "${cmds[@]}"
    report "$RESULTS/collage.json" "$(stat -c %s "$a" "$b" "$cc" | awk '{s+=$1} END {print s}')" \
        "montage/photodeid collage" | tee "$RESULTS/collage-summary.txt"

    bench_collage_post "$a" "$b" "$cc" "$dir"
}

# A collage a practice posts: 1080x1350, three 12 MP photos stacked in equal
# panels, each framed (zoom + centre from a framing file), a logo with alpha
# in a corner. The peer is ImageMagick doing the same crops, resizes, stacking
# and logo composite in one `convert` pipeline (full-size decode, as convert does
# unless told otherwise). photodeid also draws the label bands' text.
bench_collage_post() {
    local a="$1" b="$2" cc="$3" dir="$4"
    say "collage (posting: 1080x1350, framing, logo)"
    if ! ensure_imagemagick || ! command -v convert >/dev/null 2>&1; then
        echo "collage post: skipped: ImageMagick convert not available"
        return 0
    fi
    local logo="$dir/logo.png" framing="$dir/framing.csv"
    convert -size 600x300 xc:none -fill '#c0183c' -draw 'roundrectangle 0,0 599,299 40,40' \
        -fill white -draw 'circle 150,150 150,60' "$logo"
    printf 'file,zoom,center_x,center_y\n%s,1.25,45%%,55%%\n%s,1.5,50%%,40%%\n%s,1.1,60%%,50%%\n' \
        "$(basename "$a")" "$(basename "$b")" "$(basename "$cc")" >"$framing"
    "$BIN" collage "$a" "$b" "$cc" -o "$dir/post.jpg" --size portrait --layout column \
        --framing "$framing" --logo "$logo" --logo-size 0.18 --overwrite -q
    [[ "$(exiftool -s -s -s -ImageSize "$dir/post.jpg")" == "1080x1350" ]] || die "collage post: not 1080x1350"
    # The same geometry for convert: panels, margins, crops, as photodeid lays them out.
    local geo
    geo="$(python3 - "$a" "$b" "$cc" <<'PYEOF'
import subprocess, sys
W, H, n = 1080, 1350, 3
base = min(W, H)
font = round(min(max(base / 30, 10), 96)); m = max(base // 54, 4); band = -(-int(font * 1.5 * 1000) // 1000)
band = int(font * 1.5) + (1 if font * 1.5 > int(font * 1.5) else 0)
pw = W - 2 * m
ph = (H - 2 * m - (n - 1) * m - n * band) // n
frames = [(1.25, .45, .55), (1.5, .5, .4), (1.1, .6, .5)]
out = [f"{pw} {ph} {m} {band}"]
for path, (z, cx, cy) in zip(sys.argv[1:], frames):
    w, h = map(int, subprocess.check_output(["identify", "-format", "%w %h", path]).split())
    shape = pw / ph
    bw, bh = (h * shape, h) if w / h > shape else (w, w / shape)
    cw, ch = bw / z, bh / z
    x = min(max(cx * w - cw / 2, 0), w - cw); y = min(max(cy * h - ch / 2, 0), h - ch)
    out.append(f"{round(cw)}x{round(ch)}+{round(x)}+{round(y)}")
print(" ".join(out))
PYEOF
)"
    local pw ph m band c1 c2 c3
    read -r pw ph m band c1 c2 c3 <<<"$geo"
    local lw=$((1080 * 18 / 100))
    local qa qb qc qd ql qf
    qa="$(q "$a")"; qb="$(q "$b")"; qc="$(q "$cc")"; qd="$(q "$dir")"; ql="$(q "$logo")"; qf="$(q "$framing")"
    local im="convert -background white"
    for pair in "$qa:$c1" "$qb:$c2" "$qc:$c3"; do
        im+=" \\( ${pair%%:*} -crop ${pair##*:} +repage -resize ${pw}x${ph}! -gravity south -splice 0x${band} -splice 0x${m} \\)"
    done
    im+=" -append -gravity center -extent 1080x1350 \\( $ql -resize ${lw}x \\) -gravity southeast -geometry +${m}+${m} -composite -quality 92 $qd/post-im.jpg"
    eval "$im" || die "collage post: convert failed: $im"
    [[ "$(exiftool -s -s -s -ImageSize "$dir/post-im.jpg")" == "1080x1350" ]] || die "collage post: convert output not 1080x1350"
    echo "convert pipeline: $im"
    hf collage-post "rm -f $qd/post.jpg $qd/post-im.jpg" \
        -n "photodeid collage --size portrait" \
        "$(q "$BIN") collage $qa $qb $qc -o $qd/post.jpg --size portrait --layout column --framing $qf --logo $ql --logo-size 0.18 -q" \
        -n "convert crop+resize+append+composite" "$im"
    report "$RESULTS/collage-post.json" "$(stat -c %s "$a" "$b" "$cc" | awk '{s+=$1} END {print s}')" \
        "convert crop+resize+append+composite/photodeid collage --size portrait" | tee "$RESULTS/collage-post-summary.txt"
    # The same two commands in interleaved rounds (each round runs both, one
    # warmup round first), medians: on a shared VM a drift in load then hits
    # both alike, as in the strip and region benches.
    local pd="photodeid collage --size portrait" ic="convert crop+resize+append+composite" r js=()
    local pdc="$(q "$BIN") collage $qa $qb $qc -o $qd/post.jpg --size portrait --layout column --framing $qf --logo $ql --logo-size 0.18 -q"
    for ((r = 0; r <= RUNS; r++)); do
        hyperfine --runs 1 --prepare "rm -f $qd/post.jpg $qd/post-im.jpg" \
            --export-json "$RESULTS/collage-post-$r.json" -n "$pd" "$pdc" -n "$ic" "$im" >/dev/null
        [[ $r == 0 ]] || js+=("$RESULTS/collage-post-$r.json")
    done
    local mp mi
    mp="$(median "$pd" "${js[@]}")"
    mi="$(median "$ic" "${js[@]}")"
    awk -v p="$mp" -v i="$mi" -v n="$RUNS" 'BEGIN {
        printf "collage post, %d interleaved rounds (medians): photodeid %.3f s, convert %.3f s; convert / photodeid = %.2fx (goal >= 10x)\n", n, p, i, i / p }' \
        | tee -a "$RESULTS/collage-post-summary.txt"
    echo "  CPU (user + system) medians: photodeid $(cpu "$pd" "${js[@]}") s, convert $(cpu "$ic" "${js[@]}") s" \
        | tee -a "$RESULTS/collage-post-summary.txt"
}

# ------------------------------------------------------------- tiff bench --
# Lossless TIFF clean (every page, payloads copied) vs exiftool -all= -o and
# cp -r, on 12 MP 16-bit RGB TIFFs and one 50-page scan. The corpus is written
# directly by a stdlib Python writer (seconds, no encoder), then exiftool adds
# the metadata; it is cached like the JPEG corpus.
bench_tiff() {
    local n="${BENCH_TIFF_FILES:-4}" dir
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIFF_FILES must be a positive integer (got '$n')"
    dir="$CORPUS_BASE/tiff-v1-n$n"
    if [[ ! -f "$dir/.done" ]]; then
        say "tiff: generating $n x 12 MP 16-bit TIFFs and a 50-page scan in $dir"
        rm -rf "$dir" && mkdir -p "$dir"
        python3 - "$dir" "$n" <<'PYEOF'
import struct, sys
out, n = sys.argv[1], int(sys.argv[2])
def write(path, pages, w, h, spp, bits, rows):
    """Classic little-endian TIFF, uncompressed, `rows` rows per strip."""
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 0))
        link = 4
        for p in range(pages):
            row = bytes((x * 7 + p * 31 + (x >> 9)) & 0xFF for x in range(w * spp * bits // 8))
            strip_rows = [min(rows, h - y) for y in range(0, h, rows)]
            offs, counts = [], []
            for i, r in enumerate(strip_rows):
                offs.append(f.tell())
                data = row[i % 97:] + row[: i % 97]
                f.write(data * r)
                counts.append(len(data) * r)
            tables = f.tell()
            f.write(struct.pack(f"<{len(offs)}I", *offs) + struct.pack(f"<{len(counts)}I", *counts))
            bps = f.tell()
            f.write(struct.pack(f"<{spp}H", *([bits] * spp)) + b"\0\0")
            es = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, spp, bps if spp > 2 else bits),
                  (259, 3, 1, 1), (262, 3, 1, 2 if spp == 3 else 1), (273, 4, len(offs), tables),
                  (277, 3, 1, spp), (278, 4, 1, rows), (279, 4, len(counts), tables + 4 * len(offs))]
            if pages > 1:
                es.append((254, 4, 1, 2))
            ifd = f.tell()
            f.write(struct.pack("<H", len(es)))
            for t, k, c, v in sorted(es):
                f.write(struct.pack("<HHI", t, k, c) + (struct.pack("<HH", v, 0) if k == 3 and c == 1 else struct.pack("<I", v)))
            nxt = f.tell()
            f.write(struct.pack("<I", 0))
            here = f.tell()
            f.seek(link); f.write(struct.pack("<I", ifd)); f.seek(here)
            link = nxt
write(f"{out}/photo_0.tif", 1, 4000, 3000, 3, 16, 16)
import shutil
for i in range(1, n):
    shutil.copyfile(f"{out}/photo_0.tif", f"{out}/photo_{i}.tif")
write(f"{out}/scan_50_pages.tif", 50, 1240, 1754, 1, 8, 64)
PYEOF
        exiftool -q -q -overwrite_original -Artist="Jane Q. Patientname" -Make=BenchScan \
            -Model="Scanner Z9" -DateTimeOriginal="2021:03:04 09:10:11" -GPSLatitude=40.7 \
            -GPSLatitudeRef=N -XMP-dc:Creator="Jane Q. Patientname" -ImageDescription=MRN-0042 "$dir"
        touch "$dir/.done"
    fi
    local bytes c o
    bytes=$(find "$dir" -name '*.tif' -printf '%s\n' | awk '{s += $1} END {print s}')
    cat "$dir"/*.tif >/dev/null
    c="$(q "$dir")"
    o="$(q "$OUT")"
    rm -rf "$OUT"
    "$BIN" clean "$dir" -o "$OUT" -q
    [[ "$(find "$OUT" -name '*.tif' | wc -l)" == $((n + 1)) ]] || die "photodeid did not clean every TIFF"
    rm -rf "$OUT"
    say "tiff: hyperfine ($n x 12 MP 16-bit + 50-page scan, $((bytes / 1000000)) MB)"
    # "photodeid" is the default mode (keyed names: a hash of every byte);
    # the random-name and one-thread runs show what the name and the second
    # worker cost. (hyperfine reads a name starting with "--" as a flag.)
    hf tiff "rm -rf $o" \
        -n "photodeid" "$(q "$BIN") clean $c -o $o" \
        -n "photodeid --random-names" "$(q "$BIN") clean $c -o $o --random-names" \
        -n "photodeid -j 1" "$(q "$BIN") clean $c -o $o -j 1" \
        -n "exiftool" "exiftool -q -q -all= -o $o/ $c/*.tif" \
        -n "cp -r" "cp -r $c $o"
    report "$RESULTS/tiff.json" "$bytes" "photodeid/cp -r" "exiftool/photodeid" \
        "photodeid/photodeid --random-names" "photodeid -j 1/cp -r" | tee "$RESULTS/tiff-summary.txt"
    if [[ $HAVE_TIME == 1 ]]; then
        local one
        one="$WORK/tiff-one" && rm -rf "$one" && mkdir -p "$one/photo" "$one/scan"
        cp "$dir/photo_0.tif" "$one/photo/" && cp "$dir/scan_50_pages.tif" "$one/scan/"
        # Files changed in the last second are cleaned in memory (a change
        # right after the look could go unseen): these must take the
        # by-reference path, like the corpus.
        sleep 1.2
        {
            rss "photodeid 1 x 12 MP page (72 MB)" "$BIN" clean "$one/photo" -o "$OUT"
            rss "photodeid 50 pages (109 MB)" "$BIN" clean "$one/scan" -o "$OUT"
            rss "exiftool 50 pages" exiftool -q -q -all= -o "$OUT/" "$one/scan/scan_50_pages.tif"
        } | tee -a "$RESULTS/tiff-summary.txt"
        rm -rf "$one"
    fi
    rm -rf "$OUT"
}

# ------------------------------------------------------------ faces bench --
# clean --faces on 12 MP photos with a face (fixtures/faces/astronaut.jpg
# scaled into a 4000x3000 canvas) vs the same redaction given by hand (the
# redaction floor; the inference floor is `cargo bench --bench faces`), and
# deface (PyPI, onnxruntime) in a virtualenv on the same files when it installs.
bench_faces() {
    say "faces"
    if ! "$BIN" clean --help 2>/dev/null | grep -q -- '--faces'; then
        echo "faces: skipped: feature not built"
        return 0
    fi
    local n="${BENCH_FACES:-8}" dir="$WORK/faces-corpus"
    rm -rf "$dir" && mkdir -p "$dir"
    python3 - "$ROOT/fixtures/faces/astronaut.jpg" "$dir" "$n" <<'PYEOF' || { echo "faces: skipped: cannot build the corpus (python3 + Pillow)"; return 0; }
import sys
from PIL import Image
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
face = Image.open(src).convert("RGB").resize((2400, 2400), Image.BILINEAR)
for i in range(n):
    canvas = Image.new("RGB", (4000, 3000), (120, 124, 130))
    canvas.paste(face, (200 + 160 * i % 1400, 300))
    canvas.save(f"{out}/IMG_{i:04d}.jpg", quality=90)
PYEOF
    local c o
    c="$(q "$dir")"
    o="$(q "$OUT")"
    cat "$dir"/*.jpg >/dev/null
    local cmds=(
        -n "photodeid --faces" "$(q "$BIN") clean $c/IMG_????.jpg -o $o -q --faces"
        -n "photodeid --faces -j1" "$(q "$BIN") clean $c/IMG_????.jpg -o $o -q --faces -j 1"
        -n "photodeid --region" "$(q "$BIN") clean $c/IMG_????.jpg -o $o -q --region ellipse:10%,5%,60%,80%"
    )
    local venv="$WORK/deface-venv"
    if [[ ! -x "$venv/bin/deface" ]]; then
        python3 -m venv "$venv" >/dev/null 2>&1 &&
            "$venv/bin/pip" install -q deface==1.5.0 onnxruntime >/dev/null 2>&1 ||
            echo "faces: deface did not install here; compare with the inference floor alone"
    fi
    if [[ -x "$venv/bin/deface" ]]; then
        # Its defaults (threshold 0.2, blur, inference at full size); it writes IMG_nnnn_anonymized.jpg beside each input.
        cmds+=(-n "deface" "$(q "$venv/bin/deface") $c/IMG_????.jpg")
    fi
    hf faces "rm -rf $o && mkdir -p $o && rm -f $c/*_anonymized.jpg" "${cmds[@]}"
    rm -f "$dir"/*_anonymized.jpg
    report "$RESULTS/faces.json" "$(cat "$dir"/*.jpg | wc -c)" \
        "photodeid --faces/photodeid --region" "deface/photodeid --faces" \
        "deface/photodeid --faces -j1" | tee "$RESULTS/faces-summary.txt"
    if [[ $HAVE_TIME == 1 ]]; then
        rss "photodeid --faces -j1" "$BIN" clean "$dir" -o "$OUT" -q --faces -j 1 |
            tee -a "$RESULTS/faces-summary.txt"
        rss "photodeid --faces" "$BIN" clean "$dir" -o "$OUT" -q --faces |
            tee -a "$RESULTS/faces-summary.txt"
    fi
    rm -rf "$OUT"
}

# ------------------------------------------------------------- heif bench --
# Optional (BENCH_ONLY=heif): BENCH_HEIF_FILES (default 6; at most BENCH_FILES) distinct
# 12 MP HEICs made by heif-enc, each from its own picture of the JPEG corpus, in
# turn: (1) Exif + XMP carried from the JPEG and a thmb item; (2) an alpha plane
# (and the Exif); (3) a second top-level image (a burst's next frame) and a thmb
# item. Plus the real phone HEIFs in $BENCH_HEIF_REAL (default
# ../shared/corpus/exif-samples/heic, when there: iPhone grids with ICC, Nokia's
# Exif and nclx), each file once. Lossless clean vs exiftool -all= -o and cp -r;
# then one photo's decode + region + JPEG encode vs heif-convert to JPEG; then
# peak RSS of one worker (-j 1) for both. BENCH_HEIF_PRESET (default medium, x265's)
# trades the corpus's build time (~40 s CPU a photo at medium) for nothing measured
# here: the lossless clean copies the bitstream whatever it is.
bench_heif() {
    say "heif"
    command -v heif-enc >/dev/null && command -v heif-convert >/dev/null ||
        { echo "heif: skipped: heif-enc/heif-convert missing (libheif-examples)"; return 0; }
    local n="${BENCH_HEIF_FILES:-6}" preset="${BENCH_HEIF_PRESET:-medium}"
    local real="${BENCH_HEIF_REAL:-$ROOT/../shared/corpus/exif-samples/heic}"
    local dir="$CORPUS_BASE/heif-v2-n$n-$preset"
    if [[ ! -f "$dir/.done" ]]; then
        rm -rf "$dir" && mkdir -p "$dir/.tmp"
        local i=0 f name
        for f in "$CORPUS"/*.jpg; do
            i=$((i + 1)); [[ $i -le $n ]] || break
            name="$dir/$(printf 'SYN_%04d' "$i").heic"
            case $((i % 3)) in
                1) heif-enc -p "preset=$preset" -q 80 -t 320 -o "$name" "$f" ;;
                2) # An alpha plane: opaque but for a soft vignette.
                    convert "$f" \( +clone -fill white -colorize 100 -fill gray40 \
                        -draw "rectangle 0,0 400,3000" \) -alpha off -compose copy-opacity \
                        -composite "PNG32:$dir/.tmp/a.png"
                    heif-enc -p "preset=$preset" -q 80 -o "$name" "$dir/.tmp/a.png" ;;
                0) convert "$f" -resize 25% -flop "$dir/.tmp/next.jpg"
                    heif-enc -p "preset=$preset" -q 80 -t 320 -o "$name" "$f" "$dir/.tmp/next.jpg" ;;
            esac >/dev/null
        done
        [[ $i -ge $n ]] || die "heif: BENCH_HEIF_FILES=$n needs BENCH_FILES >= $n (the JPEG corpus has $((i)))"
        rm -rf "$dir/.tmp"
        touch "$dir/.done"
    fi
    # The real phone files, read-only where they are: copied in (not cached: a
    # changed sample set shows up in the next run).
    find "$dir" -maxdepth 1 -name 'REAL_*' -delete
    if [[ -d "$real" ]]; then
        local k=0 r
        while IFS= read -r r; do
            k=$((k + 1))
            cp "$r" "$dir/REAL_${k}_$(basename "$r")"
        done < <(find "$real" -type f \( -iname '*.heic' -o -iname '*.heif' -o -iname '*.avif' \) | sort)
    fi
    local out="$WORK/heif-out" qd qo qb one
    qd="$(q "$dir")"; qo="$(q "$out")"; qb="$(q "$BIN")"
    echo "heif: $(find "$dir" -type f ! -name .done | wc -l) files, $(du -sb "$dir" | cut -f1) bytes, dir $dir"
    for f in "$dir"/*; do heif-info "$f" 2>/dev/null | grep -m1 'image:' | sed "s|^|  $(basename "$f"): |"; done
    cat "$dir"/* >/dev/null
    # Keyed names (the default) hash every byte, so the file is read whole;
    # --random-names reads only the boxes and copies the pictures in the kernel.
    hf heif-clean "rm -rf $qo" \
        -n "photodeid clean" "$qb clean -q $qd -o $qo" \
        -n "photodeid clean -j 1" "$qb clean -q -j 1 $qd -o $qo" \
        -n "photodeid clean --random-names" "$qb clean -q --random-names $qd -o $qo" \
        -n "exiftool -all= -o" "mkdir -p $qo && exiftool -q -all= -o $qo/ $qd/*" \
        -n "cp -r" "cp -r $qd $qo"
    report "$RESULTS/heif-clean.json" "$(du -sb "$dir" | cut -f1)" \
        "exiftool -all= -o/photodeid clean" "exiftool -all= -o/photodeid clean --random-names" \
        "photodeid clean/cp -r" "photodeid clean -j 1/cp -r" "photodeid clean --random-names/cp -r" |
        tee "$RESULTS/heif-clean-summary.txt"
    local first
    first="$(ls "$dir"/SYN_*.heic | head -n 1)"
    one="$(q "$first")"
    hf heif-redact "rm -rf $qo; mkdir -p $qo" \
        -n "photodeid region" "$qb clean -q $one -o $qo/r.jpg --region 1000,1000,800,600" \
        -n "heif-convert" "heif-convert -q 92 $one $qo/c.jpg"
    report "$RESULTS/heif-redact.json" "$(stat -c %s "$first")" \
        "photodeid region/heif-convert" | tee "$RESULTS/heif-redact-summary.txt"
    if [[ $HAVE_TIME == 1 ]]; then
        # Peak memory of one worker (goal: under 150 MB).
        {
            rss "heif lossless -j1" "$BIN" clean -q -j 1 "$dir" -o "$OUT"
            rss "heif region+JPEG -j1" "$BIN" clean -q -j 1 "$first" -o "$OUT/r.jpg" --region 1000,1000,800,600
            rss "heif-convert to JPEG" heif-convert -q 92 "$first" "$WORK/heif-c.jpg"
            rss "cp -r" cp -r "$dir" "$OUT"
        } | tee "$RESULTS/heif-rss-summary.txt"
        rm -rf "$OUT"
    fi
}

# ---------------------------------------------------------- shard bench --
# The sharding machinery's cost: 4 `clean --shard K/4` processes at once vs
# one `clean` with the same threads in total, same files, same key. Then the
# streamed paths at scale: `plan` of a 1,000,000-entry tree (1000 folders of
# 1000 tiny GIFs, each with its own comment, so each has its own pseudonym),
# a manifest run over it (a million outputs), and `merge` of that run.
bench_shard() {
    local key="$WORK/shard.key" run="$WORK/shard-run" per total c o m
    total=$(( JOBS > 4 ? JOBS : 4 ))
    total=$(( (total + 3) / 4 * 4 ))
    per=$(( total / 4 ))
    rm -f "$key"; "$BIN" keygen "$key" 2>/dev/null
    # 8 chunks, 2 per shard (the default chunk size, 1000, would make one chunk of this corpus).
    rm -rf "$run"; "$BIN" plan "$CORPUS" -o "$run/manifest.tsv" --chunk-size $(( (N + 7) / 8 )) -q
    # And 4 chunks, one per shard: the per-chunk cost (3 fsynced side files) once per shard.
    rm -rf "$run-4"; "$BIN" plan "$CORPUS" -o "$run-4/manifest.tsv" --chunk-size $(( (N + 3) / 4 )) -q
    c="$(q "$CORPUS")"; o="$(q "$OUT")"; m="$(q "$run/manifest.tsv")"
    local x="${BENCH_SHARD_ARGS:-}"
    local shards="" shards4="" k
    for k in 0 1 2 3; do
        shards+="$(q "$BIN") clean --manifest $m -o $o --name-key $(q "$key") --shard $k/4 -j $per -q $x & "
        shards4+="$(q "$BIN") clean --manifest $(q "$run-4/manifest.tsv") -o $o --name-key $(q "$key") --shard $k/4 -j $per -q $x & "
    done
    # --flat: manifest runs name files flat (keyed), so the single run is asked for the same.
    say "shard: 4 concurrent shards (-j $per each) vs one clean (-j $total), $N files ${x:+($x)}, $(uptime)"
    warm_cache
    hf shard "rm -rf $o $(q "$run")/chunks $(q "$run-4")/chunks" \
        -n "clean -j $total" "$(q "$BIN") clean $c -o $o --name-key $(q "$key") --flat -j $total -q $x" \
        -n "4 shards -j $per, 8 chunks" "$shards wait" \
        -n "4 shards -j $per, 4 chunks" "$shards4 wait"
    report "$RESULTS/shard.json" "$BYTES" "4 shards -j $per, 8 chunks/clean -j $total" \
        "4 shards -j $per, 4 chunks/clean -j $total" | tee "$RESULTS/shard-summary.txt"
    rm -rf "$OUT"

    local n="${BENCH_SHARD_TREE:-1000000}"
    [[ "$n" == 0 ]] && return 0
    local tree="$CORPUS_BASE/tree-$n"
    if [[ ! -f "$tree/.complete" ]]; then
        say "shard: making a tree of $n tiny GIFs in $tree"
        rm -rf "$tree"
        python3 - "$tree" "$n" <<'PYEOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
head = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
tail = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
per = 1000
for d in range((n + per - 1) // per):
    p = os.path.join(root, f"case-{d:05d}")
    os.makedirs(p)
    for i in range(min(per, n - d * per)):
        c = f"patient {d * per + i}".encode()
        with open(os.path.join(p, f"IMG_{i:04d}.gif"), "wb") as f:
            f.write(head + b"\x21\xfe" + bytes([len(c)]) + c + b"\x00" + tail)
PYEOF
        touch "$tree/.complete"
    fi
    local big="$WORK/shard-big"
    rm -rf "$big"; mkdir -p "$big"
    say "shard: plan of $n entries, a manifest run over them, merge (/usr/bin/time -v)"
    {
        rss "plan $n" "$BIN" plan "$tree" -o "$big/run/manifest.tsv" -q
        rss "clean --manifest ($n files)" "$BIN" clean --manifest "$big/run/manifest.tsv" \
            -o "$big/out" --name-key "$key" -q
        rss "merge $n lines" "$BIN" merge --run-dir "$big/run" -q
        echo "map rows: $(($(wc -l <"$big/run/map.csv") - 1)), manifest $(du -h "$big/run/manifest.tsv" | cut -f1)"
    } | tee -a "$RESULTS/shard-summary.txt"
    rm -rf "$big"
}

# ------------------------------------------------------------ strip bench --
# The lossless strip at the floor (issue 18): two corpora of 12 MP photos,
# BENCH_STRIP_FILES (default 96) each, the same identifying metadata as the
# clean corpus: ImageMagick q92 4:4:4 (as `convert` writes them) and the
# cjpeg q90 4:2:0 clean corpus. `photodeid clean` (2 threads and 1) vs
# `exiftool -all= -o` vs `cp -r`, interleaved runs (hyperfine runs the
# commands in turn, BENCH_RUNS each), medians; then 1 -> 2 thread scaling
# and peak RSS per path. Needs ImageMagick (`convert`).
make_corpus_444() { # <dir> <n>
    local dir="$1" n="$2"
    if [[ -f "$dir/.complete" ]]; then
        say "strip corpus: reusing $dir"
        return
    fi
    command -v convert >/dev/null || die "strip: ImageMagick convert is needed"
    say "strip corpus: generating $n x 4000x3000 ImageMagick q92 4:4:4 JPEGs in $dir"
    local tmp="$dir.tmp"
    rm -rf "$tmp" "$dir" && mkdir -p "$tmp/.gen"
    write_generator "$tmp/.gen/gen.py"
    seq -f '%04g' 1 "$n" | xargs -P "$JOBS" -I{} bash -c \
        'set -o pipefail; python3 "$0/.gen/gen.py" 4000 3000 "$((10#{}))" 12 | convert ppm:- -quality 92 -sampling-factor 4:4:4 "$0/IMG_{}.jpg"' "$tmp"
    python3 "$tmp/.gen/gen.py" 160 120 0 12 | cjpeg -quality 75 >"$tmp/.gen/thumb.jpg"
    write_exif_args "$tmp" "$tmp/.gen/thumb.jpg" "$tmp/.gen/exif.args"
    exiftool -q -q -@ "$tmp/.gen/exif.args" -common_args -overwrite_original >/dev/null
    rm -rf "$tmp/.gen"
    mv "$tmp" "$dir"
    touch "$dir/.complete"
}

# median <name> <json>...: the median of one command's times over hyperfine exports.
median() {
    python3 -c 'import json,sys,statistics as s
t=[x for f in sys.argv[2:] for r in json.load(open(f))["results"] if r["command"]==sys.argv[1] for x in r["times"]]
print("%.4f" % s.median(t))' "$@"
}

# cpu <name> <json>...: the median CPU time (user + system) of one command.
cpu() {
    python3 -c 'import json,sys,statistics as s
t=[r["user"]+r["system"] for f in sys.argv[2:] for r in json.load(open(f))["results"] if r["command"]==sys.argv[1]]
print("%.4f" % s.median(t))' "$@"
}

strip_one() { # <label> <corpus dir>
    local label="$1" dir="$2" c o bytes n
    n="$(find "$dir" -maxdepth 1 -name '*.jpg' | wc -l)"
    bytes="$(find "$dir" -maxdepth 1 -name '*.jpg' -printf '%s\n' | awk '{s+=$1} END {print s}')"
    cat "$dir"/*.jpg >/dev/null
    c="$(q "$dir")"
    o="$(q "$OUT")"
    rm -rf "$OUT"
    "$BIN" clean "$dir" -o "$OUT" -q
    [[ "$(count_out "$OUT")" == "$n" ]] || die "strip: photodeid wrote $(count_out "$OUT") files, expected $n"
    rm -rf "$OUT"
    say "strip $label: $n files, $((bytes / 1000000)) MB; hyperfine, $RUNS interleaved rounds"
    # Interleaved: each round runs every command once (one warmup round first),
    # so a change in the machine's load hits all of them alike.
    local r js=()
    for ((r = 0; r <= RUNS; r++)); do
        hyperfine --runs 1 --prepare "rm -rf $o" --export-json "$RESULTS/strip-$label-$r.json" \
            -n "photodeid" "$(q "$BIN") clean $c -o $o -j 2" \
            -n "photodeid -j 1" "$(q "$BIN") clean $c -o $o -j 1" \
            -n "photodeid random names" "$(q "$BIN") clean $c -o $o -j 2 --random-names" \
            -n "exiftool" "exiftool -all= -o $o/ $c/*.jpg" \
            -n "cp -r" "cp -r $c $o" >/dev/null
        [[ $r == 0 ]] || js+=("$RESULTS/strip-$label-$r.json")
    done
    local pd p1 rn ex cp
    pd="$(median photodeid "${js[@]}")"
    p1="$(median "photodeid -j 1" "${js[@]}")"
    rn="$(median "photodeid random names" "${js[@]}")"
    ex="$(median exiftool "${js[@]}")"
    cp="$(median "cp -r" "${js[@]}")"
    {
        echo "strip $label ($n files, $((bytes / 1000000)) MB; load: $(uptime | sed 's/.*load/load/'))"
        awk -v pd="$pd" -v p1="$p1" -v rn="$rn" -v ex="$ex" -v cp="$cp" -v b="$bytes" 'BEGIN {
            printf "  medians: photodeid -j 2 %.3f s (%.0f MB/s), -j 1 %.3f s, exiftool %.3f s, cp -r %.3f s\n", pd, b / 1e6 / pd, p1, ex, cp
            printf "  photodeid / cp -r = %.2fx (goal <= 1.2x); exiftool / photodeid = %.2fx (goal >= 5x)\n", pd / cp, ex / pd
            printf "  scaling 1 -> 2 threads: %.2fx (goal >= 1.8x)\n", p1 / pd
            printf "  the keyed names (BLAKE3 over every byte): -j 2 with --random-names %.3f s, so %.0f%% of the default run\n", rn, 100 * (pd - rn) / pd }'
        echo "  CPU (user + system) medians: photodeid -j 2 $(cpu photodeid "${js[@]}") s, -j 1 $(cpu "photodeid -j 1" "${js[@]}") s, exiftool $(cpu exiftool "${js[@]}") s, cp -r $(cpu "cp -r" "${js[@]}") s"
        if [[ $HAVE_TIME == 1 ]]; then
            rss "photodeid -j 1 ($label)" "$BIN" clean "$dir" -o "$OUT" -j 1
            rss "photodeid -j 2 ($label)" "$BIN" clean "$dir" -o "$OUT" -j 2
            rss "cp -r ($label)" cp -r "$dir" "$OUT"
        fi
        if command -v strace >/dev/null 2>&1; then
            rm -rf "$OUT"
            strace -c -f -o "$RESULTS/strace-strip-$label.txt" "$BIN" clean "$dir" -o "$OUT" -q -j 2
            echo "  system calls for $n files (strace -c -f; calls, errors):"
            awk '$NF ~ /^(read|pread64|mmap|munmap|write|copy_file_range|statx|newfstatat|openat|mkdir|readlink|getrandom|renameat2|fchmod|unlink)$/ {
                    e = ($5 ~ /^[0-9]+$/) ? $5 : 0; printf "    %-16s %6d %6d\n", $NF, $4, e }' \
                "$RESULTS/strace-strip-$label.txt"
        fi
    } | tee "$RESULTS/strip-$label-summary.txt"
    rm -rf "$OUT"
}

bench_strip() {
    local n="${BENCH_STRIP_FILES:-$N}"
    local d444="$CORPUS_BASE/strip444-v1-n$n"
    make_corpus_444 "$d444" "$n"
    strip_one "444q92" "$d444"
    if [[ "$n" == "$N" ]]; then
        make_corpus
        strip_one "420q90" "$CORPUS"
    fi
}

# ----------------------------------------------------- progressive bench --
# Opt-in (BENCH_ONLY=progressive): progressive copies of the corpus (jpegtran
# -progressive, metadata kept), then, one file at a time on one core:
# check --thorough (every scan entropy-decoded into a coefficient buffer) vs
# djpeg (a full decode to pixels), and clean --thorough (that decode plus
# the baseline writer) vs jpegtran -copy none. Compare user+sys as well as
# wall on a loaded machine (hyperfine's JSON has both).
bench_progressive() {
    command -v jpegtran >/dev/null 2>&1 || { echo "skipped: jpegtran missing"; return 0; }
    local P="$CORPUS-progressive" p o one=""
    if [[ ! -f "$P/.complete" ]]; then
        rm -rf "$P" && mkdir -p "$P"
        for f in "$CORPUS"/*.jpg; do
            jpegtran -copy all -progressive -outfile "$P/$(basename "$f")" "$f"
        done
        touch "$P/.complete"
    fi
    command -v taskset >/dev/null 2>&1 && one="taskset -c 0"
    p="$(q "$P")"
    o="$(q "$OUT")"
    cat "$P"/*.jpg >/dev/null
    say "progressive: hyperfine (warmup $WARMUP, runs $RUNS), $N files"
    hf progressive "rm -rf $o && mkdir -p $o" \
        -n "photodeid check --thorough" "for f in $p/*.jpg; do $one $(q "$BIN") check -q --thorough \$f >/dev/null || true; done" \
        -n "djpeg" "for f in $p/*.jpg; do $one djpeg -outfile /dev/null \$f; done" \
        -n "photodeid clean --thorough" "$one $(q "$BIN") clean -q $p -o $o --thorough -j 1" \
        -n "jpegtran -copy none" "for f in $p/*.jpg; do $one jpegtran -copy none -outfile $o/\$(basename \$f) \$f; done"
    report "$RESULTS/progressive.json" "$BYTES" \
        "photodeid check --thorough/djpeg" \
        "photodeid clean --thorough/jpegtran -copy none" | tee "$RESULTS/progressive-summary.txt"
    rm -rf "$OUT"
}

# ------------------------------------------------------------------- main --
echo "photodeid: $BIN ($("$BIN" --version 2>/dev/null || echo '?'))"
echo "machine: $JOBS cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(hyperfine --version); exiftool $(exiftool -ver)"
for b in ${BENCH_ONLY:-clean thorough redact collage faces}; do
    case $b in
        clean | thorough | redact | collage | tiff | heif | faces | shard | strip | progressive | dctedit) "bench_$b" ;;
        *) die "BENCH_ONLY: unknown bench '$b' (clean, thorough, redact, collage, tiff, heif, faces, shard, strip, progressive, dctedit)" ;;
    esac
done
say "results in $RESULTS"
