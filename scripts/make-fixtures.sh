#!/usr/bin/env bash
# Regenerates the committed test fixtures under fixtures/.
#
#   bash scripts/make-fixtures.sh            (run from the repository root)
#
# Everything is synthetic: pixels come from a seeded Python generator, metadata
# is injected with exiftool, cjpeg, cwebp and a little hand-written PNG/JPEG
# byte surgery.  No real patient data is used anywhere.
#
# Requirements: bash, python3 (>= 3.8, with venv + pip), exiftool, cjpeg
# (libjpeg-turbo-progs), cwebp (webp).  Pillow is used for the TIFF, GIF, CMYK
# JPEG and the sRGB ICC profile; if it is not importable it is installed into
# a throw-away virtualenv inside the temp dir (PILLOW_VERSION, default 11.3.0).
#
# Output is deterministic for a given set of tool versions (exiftool, libjpeg,
# libwebp, zlib, Pillow/lcms).  The outputs are committed, so CI never runs this.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
FX="$ROOT/fixtures"

for tool in exiftool cjpeg cwebp python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-fixtures: missing tool: $tool" >&2; exit 1; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/photodeid-fixtures.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

# ---------------------------------------------------------------- canaries --
ARTIST="Jane Q. Patientname"
SERIAL="SN-PHI-7731-XQ"
MRN="MRN-00424242"
MODEL="PatientCam Model Z9"
XMPC="XMP-CANARY-5c1e"
TRAILER="TRAILER-CANARY-9d2f"
MAKE="FixtureCam"
DT="2021:03:04 09:10:11"
export ARTIST SERIAL MRN MODEL XMPC TRAILER

# ------------------------------------------------------------------ Python --
PY=python3
if ! python3 -c 'import PIL' >/dev/null 2>&1; then
    echo "make-fixtures: Pillow not found, installing pillow==${PILLOW_VERSION:-11.3.0} into a temp venv" >&2
    python3 -m venv "$TMP/venv"
    "$TMP/venv/bin/pip" install -q --disable-pip-version-check "pillow==${PILLOW_VERSION:-11.3.0}"
    PY="$TMP/venv/bin/python"
fi

cat >"$TMP/gen.py" <<'PYEOF'
"""Pixel / container generator for photodeid fixtures (driven by make-fixtures.sh)."""
import hashlib
import math
import os
import random
import struct
import sys
import zlib

OUT = sys.argv[2]
ARTIST = os.environ["ARTIST"]
MRN = os.environ["MRN"]
TRAILER = os.environ["TRAILER"]


def path(name):
    return os.path.join(OUT, name)


# ----------------------------------------------------------------- pixels --
def photo(w, h, seed):
    """Deterministic 'clinical photo': skin-tone gradient, texture, a lesion,
    a drape at the bottom and a ruler strip at the top-left (asymmetric)."""
    rnd = random.Random(seed)
    base = (rnd.randint(200, 235), rnd.randint(150, 180), rnd.randint(120, 145))
    cx, cy = rnd.uniform(0.40, 0.65) * w, rnd.uniform(0.40, 0.60) * h
    rx, ry = rnd.uniform(0.10, 0.18) * w, rnd.uniform(0.10, 0.18) * h
    lesion = (rnd.randint(120, 160), rnd.randint(50, 80), rnd.randint(45, 70))
    ph = rnd.uniform(0, 6.28)
    buf = bytearray(w * h * 3)
    i = 0
    for y in range(h):
        light = 0.78 + 0.30 * (1 - y / h) + 0.05 * math.sin(ph + y * 0.05)
        drape_y = h * (0.82 + 0.04 * math.sin(ph))
        for x in range(w):
            shade = light * (0.92 + 0.12 * x / w)
            tex = 5.0 * math.sin(x * 0.31 + ph) * math.sin(y * 0.23 - ph)
            r, g, b = (c * shade + tex for c in base)
            dx, dy = (x - cx) / rx, (y - cy) / ry
            d = math.sqrt(dx * dx + dy * dy)
            if d < 1.25:
                t = 1.0 if d < 1.0 else (1.25 - d) / 0.25
                t *= 0.85 + 0.15 * math.sin(8 * math.atan2(dy, dx) + ph)
                r, g, b = (o * (1 - t) + l * t for o, l in zip((r, g, b), lesion))
            if y > drape_y + 6 * math.sin(x * 0.07 + ph):
                r, g, b = 60 + 0.1 * x % 20, 115 + tex, 125 + tex
            if 6 <= y < 18 and 6 <= x < 6 + int(w * 0.4):
                r = g = b = 235
                if y < 12 and (x - 6) % 5 == 0:
                    r = g = b = 20
            n = rnd.randint(-3, 3)
            buf[i] = max(0, min(255, int(r + n)))
            buf[i + 1] = max(0, min(255, int(g + n)))
            buf[i + 2] = max(0, min(255, int(b + n)))
            i += 3
    return buf


def orient_pixels(w=96, h=64):
    """Asymmetric orientation-test image (stored/raw pixel layout):
    gray-ish gradient background, RED block x<32,y<16 (top-left),
    GREEN block x>=80,y<16 (top-right), BLUE block x>=64,y>=48 (bottom-right)."""
    buf = bytearray(w * h * 3)
    i = 0
    for y in range(h):
        for x in range(w):
            if x < 32 and y < 16:
                px = (230, 20, 20)
            elif x >= 80 and y < 16:
                px = (20, 200, 20)
            elif x >= 64 and y >= 48:
                px = (20, 20, 230)
            else:
                v = 100 + (x * 40) // w + (y * 30) // h
                px = (v, v, v + 10)
            buf[i:i + 3] = bytes(px)
            i += 3
    return buf


def write_ppm(name, w, h, rgb):
    with open(path(name), "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(rgb)


# -------------------------------------------------------------------- PNG --
def chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def png_bytes(w, h, pixels, color_type=2, extra=(), bit_depth=8, idat=None):
    """pixels: packed RGB (2) / RGBA (6) / gray (0) bytes. extra: chunks placed before IDAT."""
    bpp = {0: 1, 2: 3, 6: 4}[color_type]
    if idat is None:
        raw = bytearray()
        stride = w * bpp
        for y in range(h):
            raw.append(0)
            raw += pixels[y * stride:(y + 1) * stride]
        idat = zlib.compress(bytes(raw), 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    for c in extra:
        out += c
    out += chunk(b"IDAT", idat)
    out += chunk(b"IEND", b"")
    return out


def text(key, val):
    return chunk(b"tEXt", key.encode("latin-1") + b"\0" + val.encode("latin-1"))


def ztext(key, val):
    return chunk(b"zTXt", key.encode("latin-1") + b"\0\0" + zlib.compress(val.encode("latin-1"), 9))


def time_chunk(y, mo, d, hh, mi, ss):
    return chunk(b"tIME", struct.pack(">HBBBBB", y, mo, d, hh, mi, ss))


GAMA = chunk(b"gAMA", struct.pack(">I", 45455))
PHYS = chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))  # 72 dpi


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


# -------------------------------------------------------------------- ICC --
def srgb_icc():
    from PIL import ImageCms
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    # lcms stamps the creation time into the header: pin it for determinism.
    icc[24:36] = struct.pack(">6H", 2021, 3, 4, 9, 10, 11)
    if any(icc[84:100]):  # profile ID present -> recompute (ICC.1 7.2.18)
        tmp = bytearray(icc)
        tmp[44:48] = b"\0" * 4
        tmp[64:68] = b"\0" * 4
        tmp[84:100] = b"\0" * 16
        icc[84:100] = hashlib.md5(bytes(tmp)).digest()
    return bytes(icc)


# ------------------------------------------------------------------ steps --
def assets():
    from PIL import Image

    W, H = 320, 240
    big = photo(W, H, 1)
    write_ppm("photo_320x240.ppm", W, H, big)
    write("photo_320x240.png", png_bytes(W, H, big))
    mid = photo(160, 120, 2)
    write_ppm("photo_160x120.ppm", 160, 120, mid)
    write("photo_160x120.png", png_bytes(160, 120, mid))
    write_ppm("thumb_64x48.ppm", 64, 48, photo(64, 48, 3))
    write_ppm("trailer_32x24.ppm", 32, 24, photo(32, 24, 4))
    write_ppm("small_64x48.ppm", 64, 48, photo(64, 48, 5))
    ori = orient_pixels()
    write_ppm("orient_96x64.ppm", 96, 64, ori)
    write("orient_96x64.png", png_bytes(96, 64, ori))
    for k in range(1, 7):
        write_ppm("sample_%d.ppm" % k, 240, 180, photo(240, 180, 100 + k))
    write("sample_5.png", png_bytes(240, 180, photo(240, 180, 105)))  # same as sample_5.ppm

    write("srgb.icc", srgb_icc())

    # CMYK JPEG (libjpeg writes an Adobe APP14 marker for CMYK)
    Image.frombytes("RGB", (160, 120), bytes(mid)).convert("CMYK").save(
        path("cmyk.jpg"), "JPEG", quality=90)

    # TIFFs (uncompressed RGB, single strip)
    Image.frombytes("RGB", (160, 120), bytes(mid)).save(path("tags.tif"), "TIFF")
    Image.frombytes("RGB", (96, 64), bytes(ori)).save(path("orient.tif"), "TIFF")

    # GIF with a comment extension
    Image.frombytes("RGB", (160, 120), bytes(mid)).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=64).save(
        path("comment.gif"), "GIF", comment=MRN.encode())

    # PNG with text chunks (eXIf + iTXt/XMP are added later by exiftool)
    write("text.png", png_bytes(160, 120, mid, extra=[
        GAMA, PHYS, time_chunk(2021, 3, 4, 9, 10, 11),
        text("Author", ARTIST),
        text("Creation Time", "2021:03:04 09:10:11"),
        ztext("Comment", MRN),
    ]))

    # RGBA with real transparency (alpha ramp + fully transparent disc)
    rgba = bytearray()
    for y in range(120):
        for x in range(160):
            j = (y * 160 + x) * 3
            d = math.hypot(x - 120, y - 40)
            a = 0 if d < 18 else max(0, min(255, 64 + x * 191 // 159))
            rgba += mid[j:j + 3] + bytes([a])
    write("rgba.png", png_bytes(160, 120, rgba, color_type=6, extra=[text("Author", ARTIST)]))

    # Orientation-test PNG (eXIf added by exiftool)
    write("orient.png", png_bytes(96, 64, ori, extra=[PHYS]))

    # Small PNG appended after png_text.png's IEND
    write("trailer.png", png_bytes(32, 24, photo(32, 24, 4), extra=[text("Comment", TRAILER)]))

    # Sample PNG for Smith_John (text chunks; EXIF added later)
    write("sample_smith.png", png_bytes(240, 180, photo(240, 180, 104), extra=[
        PHYS, time_chunk(2020, 1, 15, 14, 30, 0),
        text("Author", ARTIST),
        text("Description", MRN),
        text("Creation Time", "2020:01:15 14:30:00"),
    ]))


def jpeg_segments(data):
    """Yield (offset, marker, seg_len) for header segments up to SOS."""
    assert data[:2] == b"\xff\xd8"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF, hex(i)
        m = data[i + 1]
        ln = struct.unpack(">H", data[i + 2:i + 4])[0]
        yield i, m, ln
        if m == 0xDA:
            return
        i += 2 + ln


def bad(fx, tmp):
    d = os.path.join(fx, "bad")
    def w(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    w("empty.jpg", b"")
    with open(os.path.join(tmp, "plain.jpg"), "rb") as f:
        jpg = f.read()
    w("truncated.jpg", jpg[:len(jpg) // 2])
    with open(os.path.join(tmp, "photo_160x120.png"), "rb") as f:
        png = f.read()
    w("truncated.png", png[:len(png) // 2])
    w("not_an_image.jpg",
      b"This is a plain text file with a .jpg extension.\n"
      b"photodeid must reject it cleanly (no panic, no output image).\n")
    rnd = random.Random(20210304)
    w("garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(rnd.randrange(256) for _ in range(512)))

    # Decompression bomb PNG: IHDR claims 100000x100000 8-bit gray (10 GB raw),
    # IDAT holds one valid zero row only.  All CRCs are correct.
    row = b"\0" + b"\0" * 100000
    w("bomb.png", png_bytes(100000, 100000, None, color_type=0, idat=zlib.compress(row, 9)))

    # Bomb JPEG: valid small baseline JPEG with SOF0 patched to 65000x65000.
    with open(os.path.join(tmp, "small.jpg"), "rb") as f:
        sj = bytearray(f.read())
    for off, m, ln in jpeg_segments(sj):
        if m in (0xC0, 0xC1, 0xC2):
            sj[off + 5:off + 9] = struct.pack(">HH", 65000, 65000)  # height, width
            break
    else:
        raise SystemExit("no SOF in small.jpg")
    w("bomb.jpg", bytes(sj))

    # HEIC: just an ISO-BMFF ftyp box + an empty meta box header
    ftyp = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic"
    meta = struct.pack(">I", 12) + b"meta" + b"\0\0\0\0"
    w("unsupported.heic", ftyp + meta)

    # APP1 whose declared length (0x4000) runs past EOF
    jfif = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    app1 = b"\xff\xe1" + struct.pack(">H", 0x4000) + b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01"
    w("bad_segment.jpg", b"\xff\xd8" + jfif + app1)


if __name__ == "__main__":
    if sys.argv[1] == "assets":
        assets()
    elif sys.argv[1] == "bad":
        bad(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("unknown step")
PYEOF

echo "make-fixtures: generating pixels in $TMP" >&2
"$PY" "$TMP/gen.py" assets "$TMP"

rm -rf "$FX/dirty" "$FX/bad" "$FX/sample"
mkdir -p "$FX/dirty" "$FX/bad" "$FX/sample"
D="$FX/dirty"

# ---------------------------------------------------------------- helpers --
# exiftool, fail on errors, keep warnings visible.
et() { exiftool -q -overwrite_original "$@"; }

# Full EXIF canary set: exif_args "YYYY:MM:DD HH:MM:SS"
exif_args() {
    local dt="$1"
    EXIF_ARGS=(
        "-EXIF:Make=$MAKE"
        "-EXIF:Model=$MODEL"
        "-EXIF:Artist=$ARTIST"
        "-EXIF:ImageDescription=$MRN"
        "-ExifIFD:UserComment=$MRN"
        "-ExifIFD:SerialNumber=$SERIAL"
        "-ExifIFD:LensSerialNumber=$SERIAL"
        "-EXIF:ModifyDate=$dt"
        "-ExifIFD:DateTimeOriginal=$dt"
        "-ExifIFD:CreateDate=$dt"
        "-GPS:GPSLatitude=40.7128"
        "-GPS:GPSLatitudeRef=N"
        "-GPS:GPSLongitude=74.0060"
        "-GPS:GPSLongitudeRef=W"
        "-GPS:GPSAltitude=10"
        "-GPS:GPSAltitudeRef#=0"
        "-GPS:GPSDateStamp=${dt%% *}"
        "-GPS:GPSTimeStamp=${dt##* }"
    )
}
XMP_ARGS=(
    "-XMP-dc:Creator=$ARTIST"
    "-XMP-dc:Description=$MRN"
    "-XMP-xmp:Label=$XMPC"
    "-XMP-xmp:CreateDate=$DT"
)
IPTC_ARGS=(
    "-IPTC:By-line=$ARTIST"
    "-IPTC:Caption-Abstract=$MRN"
)
cj() { cjpeg -quality 90 -optimize "$@"; }

# ------------------------------------------------------------ dirty JPEGs --
exif_args "$DT"

# thumbnail for IFD1 and the trailer JPEG appended after EOI
cj "$TMP/thumb_64x48.ppm" >"$TMP/thumb.jpg"
cj "$TMP/trailer_32x24.ppm" >"$TMP/trailer.jpg"
et "-Comment=$TRAILER" "-EXIF:ImageDescription=$TRAILER" "$TMP/trailer.jpg"

cj "$TMP/photo_320x240.ppm" >"$TMP/full.jpg"
et "${EXIF_ARGS[@]}" "${XMP_ARGS[@]}" "${IPTC_ARGS[@]}" \
   "-Comment=$MRN" "-ThumbnailImage<=$TMP/thumb.jpg" "-ICC_Profile<=$TMP/srgb.icc" \
   "$TMP/full.jpg"
cat "$TMP/full.jpg" "$TMP/trailer.jpg" >"$D/jpeg_full.jpg"

cj "$TMP/photo_160x120.ppm" >"$D/jpeg_icc.jpg"
et "-ICC_Profile<=$TMP/srgb.icc" "-EXIF:Artist=$ARTIST" "-EXIF:Model=$MODEL" \
   "-ExifIFD:DateTimeOriginal=$DT" "$D/jpeg_icc.jpg"

for n in 1 2 3 4 5 6 7 8; do
    cjpeg -quality 95 "$TMP/orient_96x64.ppm" >"$D/jpeg_orient_$n.jpg"
    et "-EXIF:Orientation#=$n" "-EXIF:Artist=$ARTIST" "$D/jpeg_orient_$n.jpg"
done

cj -progressive "$TMP/photo_160x120.ppm" >"$D/jpeg_progressive.jpg"
cj -restart 1 "$TMP/photo_160x120.ppm" >"$D/jpeg_restart.jpg"
cj -grayscale "$TMP/photo_160x120.ppm" >"$D/jpeg_gray.jpg"
cp "$TMP/cmyk.jpg" "$D/jpeg_cmyk.jpg"
for f in progressive restart gray cmyk; do
    et "${EXIF_ARGS[@]}" "$D/jpeg_$f.jpg"
done

cj "$TMP/photo_160x120.ppm" >"$D/jpeg_photoshop.jpg"
et "${IPTC_ARGS[@]}" "-IPTC:ObjectName=$MRN" "-IPTC:DateCreated=2021:03:04" \
   "-IPTC:TimeCreated=09:10:11" "-Photoshop:CopyrightFlag=True" "$D/jpeg_photoshop.jpg"

# --------------------------------------------------------------- dirty PNG --
cp "$TMP/text.png" "$D/png_text.png"
et "-EXIF:Artist=$ARTIST" "-EXIF:ImageDescription=$MRN" "-EXIF:Orientation#=1" \
   "-ExifIFD:DateTimeOriginal=$DT" "${XMP_ARGS[@]}" "$D/png_text.png"
cat "$TMP/trailer.png" >>"$D/png_text.png"

cp "$TMP/orient.png" "$D/png_orient_6.png"
et "-EXIF:Orientation#=6" "-EXIF:Artist=$ARTIST" "$D/png_orient_6.png"

cp "$TMP/rgba.png" "$D/png_rgba.png"

# -------------------------------------------------------------- dirty WebP --
cwebp -quiet -q 80 -m 6 "$TMP/photo_320x240.png" -o "$D/webp_meta.webp"
et "${EXIF_ARGS[@]}" "${XMP_ARGS[@]}" "$D/webp_meta.webp"

cwebp -quiet -lossless "$TMP/orient_96x64.png" -o "$D/webp_lossless_orient_6.webp"
et "-EXIF:Orientation#=6" "-EXIF:Artist=$ARTIST" "$D/webp_lossless_orient_6.webp"

# --------------------------------------------------------- dirty GIF/TIFF --
cp "$TMP/comment.gif" "$D/gif_comment.gif"
et "${XMP_ARGS[@]}" "$D/gif_comment.gif"

cp "$TMP/tags.tif" "$D/tiff_tags.tif"
et "${EXIF_ARGS[@]}" "-IFD0:Orientation#=1" "$D/tiff_tags.tif"

cp "$TMP/orient.tif" "$D/tiff_orient_8.tif"
et "-IFD0:Orientation#=8" "-IFD0:Artist=$ARTIST" "$D/tiff_orient_8.tif"

# --------------------------------------------------------------------- bad --
cj "$TMP/photo_160x120.ppm" >"$TMP/plain.jpg"
cjpeg -quality 75 "$TMP/small_64x48.ppm" >"$TMP/small.jpg"
"$PY" "$TMP/gen.py" bad "$FX" "$TMP"

# ------------------------------------------------------------------ sample --
S="$FX/sample"
mkdir -p "$S/Doe_Jane_1961-04-02" "$S/Smith_John"
i=1
for pair in "before|2021:03:04 09:10:11|IMG_2021-03-04_before.jpg" \
            "during|2021:09:10 10:20:30|IMG_2021-09-10_during.jpg" \
            "after|2022:06:01 11:22:33|IMG_2022-06-01_after.jpg"; do
    IFS='|' read -r _ dt name <<<"$pair"
    out="$S/Doe_Jane_1961-04-02/$name"
    cj "$TMP/sample_$i.ppm" >"$out"
    exif_args "$dt"
    et "${EXIF_ARGS[@]}" "-EXIF:Orientation#=1" "$out"
    i=$((i + 1))
done

out="$S/Smith_John/2020-01-15_wound_left_leg.png"
cp "$TMP/sample_smith.png" "$out"
exif_args "2020:01:15 14:30:00"
et "-EXIF:Artist=$ARTIST" "-EXIF:Model=$MODEL" "-ExifIFD:DateTimeOriginal=2020:01:15 14:30:00" "$out"

out="$S/Smith_John/2020-02-01_wound_left_leg.webp"
cwebp -quiet -q 80 -m 6 "$TMP/sample_5.png" -o "$out"
exif_args "2020:02:01 15:00:00"
et "${EXIF_ARGS[@]}" "$out"

out="$S/Smith_John/IMG_20200301_rotated.jpg"
cj "$TMP/sample_6.ppm" >"$out"
exif_args "2020:03:01 16:45:00"
et "${EXIF_ARGS[@]}" "-EXIF:Orientation#=6" "$out"

# ---------------------------------------------------------------- canaries --
printf '%s\n' "$ARTIST" "$SERIAL" "$MRN" "$MODEL" "$XMPC" "$TRAILER" >"$FX/CANARIES.txt"

# ------------------------------------------------------------------ README --
cat >"$FX/README.md" <<'MDEOF'
# Test fixtures

All files here are **synthetic**. They were generated by
`scripts/make-fixtures.sh` (run `bash scripts/make-fixtures.sh` from the
repository root to regenerate). Pixels come from a seeded Python generator
(skin-tone gradient, texture, a "lesion" ellipse, a drape and a ruler strip);
metadata was injected with exiftool / cjpeg / cwebp / Pillow and small
hand-written PNG/JPEG byte edits. **No real patient data is used**; every
name, number and place below is made up (the GPS point is a public city
centre).

The script writes fresh outputs each time; they are byte-identical across runs
as long as the tool versions (exiftool, libjpeg-turbo, libwebp, zlib,
Pillow/lcms2) stay the same. Outputs are committed, CI never runs the script.

## Canaries

`CANARIES.txt` lists, one per line, the strings injected into file
*contents*. A scrubbed output must not contain any of them (byte search):

| Canary | Where it is injected |
|---|---|
| `Jane Q. Patientname` | EXIF Artist, IPTC By-line, XMP dc:creator, PNG tEXt `Author` |
| `SN-PHI-7731-XQ` | EXIF SerialNumber (0xA431, BodySerialNumber) and LensSerialNumber (0xA435) |
| `MRN-00424242` | EXIF ImageDescription + UserComment, JPEG COM, IPTC Caption-Abstract / ObjectName, XMP dc:description, PNG zTXt `Comment` / tEXt `Description`, GIF comment extension |
| `PatientCam Model Z9` | EXIF Model |
| `XMP-CANARY-5c1e` | XMP only (xmp:Label) |
| `TRAILER-CANARY-9d2f` | only in data appended after the image end (JPEG EOI / PNG IEND) |

Not in `CANARIES.txt` but also injected (check by parsing, not by string):

* GPS: 40.7128 N, 74.0060 W, altitude 10 m, GPSDateStamp/GPSTimeStamp
  (EXIF GPS IFD, rationals).
* Dates: DateTimeOriginal / CreateDate / ModifyDate = `2021:03:04 09:10:11`
  in the dirty files (PNG tIME too); sample files use their own dates (below).
* Make = `FixtureCam` (deliberately not a canary: tools may keep or drop it).

Note: the PNG zTXt chunk is zlib-compressed, so the MRN there is invisible to a
byte search; `png_text.png` therefore also carries the MRN in its eXIf
ImageDescription. Check for zTXt by chunk type.

## `dirty/` – one metadata case per file

| File | Pixels | What was injected |
|---|---|---|
| `jpeg_full.jpg` | 320x240 baseline, 4:2:0 | JFIF; EXIF (all canaries, Make/Model, serials, dates, GPS, IFD1 thumbnail 64x48 JPEG); XMP (creator, description, XMP-CANARY, xmp:CreateDate); IPTC in Photoshop APP13 (By-line, Caption-Abstract); COM = MRN; APP2 ICC_PROFILE (sRGB, lcms); **a second complete 32x24 JPEG appended after EOI** whose COM and EXIF ImageDescription are `TRAILER-CANARY-9d2f` |
| `jpeg_icc.jpg` | 160x120 | APP2 ICC_PROFILE (sRGB) + EXIF Artist, Model, DateTimeOriginal |
| `jpeg_orient_1.jpg` … `jpeg_orient_8.jpg` | 96x64 stored, see below | EXIF Orientation = N, Artist |
| `jpeg_progressive.jpg` | 160x120, `cjpeg -progressive` | full EXIF canary set + GPS + dates |
| `jpeg_restart.jpg` | 160x120, `cjpeg -restart 1` (DRI, RSTn markers) | full EXIF canary set + GPS + dates |
| `jpeg_gray.jpg` | 160x120, 1 component | full EXIF canary set + GPS + dates |
| `jpeg_cmyk.jpg` | 160x120, 4 components (Pillow/libjpeg), Adobe APP14 (transform 0, data stored inverted as Photoshop does; no JFIF) | full EXIF canary set + GPS + dates |
| `jpeg_photoshop.jpg` | 160x120 | **only** Photoshop APP13 IRB: IPTC By-line, Caption-Abstract, ObjectName (MRN), DateCreated/TimeCreated, CopyrightFlag, IPTC digest. No EXIF/XMP |
| `png_text.png` | 160x120 RGB | gAMA, pHYs, tIME (2021-03-04 09:10:11), tEXt `Author` (Jane), tEXt `Creation Time`, zTXt `Comment` (MRN, compressed), eXIf (Artist, ImageDescription = MRN, Orientation 1, DateTimeOriginal), iTXt `XML:com.adobe.xmp` (XMP packet with XMP-CANARY); **a complete 32x24 PNG appended after IEND** whose tEXt `Comment` is `TRAILER-CANARY-9d2f` |
| `png_orient_6.png` | 96x64 stored | pHYs, eXIf with Orientation 6 + Artist |
| `png_rgba.png` | 160x120 RGBA (alpha ramp + fully transparent disc) | tEXt `Author` (Jane) |
| `webp_meta.webp` | 320x240 lossy (VP8) | VP8X with EXIF + XMP flags; EXIF chunk (full canary set, GPS, dates); XMP chunk (XMP-CANARY etc.) |
| `webp_lossless_orient_6.webp` | 96x64 stored, lossless (VP8L) | VP8X + EXIF chunk: Orientation 6, Artist |
| `gif_comment.gif` | 160x120, 64-colour palette | Comment extension = MRN; XMP application extension (`XMP DataXMP`) with XMP-CANARY, creator, description |
| `tiff_tags.tif` | 160x120 RGB, uncompressed | IFD0 Make, Model, Artist, ImageDescription, Orientation 1, ModifyDate; ExifIFD serials, UserComment, dates; GPS IFD |
| `tiff_orient_8.tif` | 96x64 stored RGB | IFD0 Orientation 8, Artist |

### Orientation test image

All `*orient*` files store the same 96x64 image (before applying the
Orientation tag): a grey gradient with a **red** block at x<32, y<16
(top-left), a **green** block at x>=80, y<16 (top-right) and a **blue** block
at x>=64, y>=48 (bottom-right). Block centres in stored pixels: red (16,8),
green (88,8), blue (80,56). After applying the orientation correctly, the
displayed image for tags 5–8 is 64x96, and for all eight tags the three
blocks land in distinct, predictable corners (e.g. Orientation 6 = rotate
90° CW: red top-right, green bottom-right, blue bottom-left).

## `bad/` – inputs that must be rejected cleanly (no panic, no output)

| File | What it is |
|---|---|
| `empty.jpg` | 0 bytes |
| `truncated.jpg` | first half of a valid 160x120 JPEG |
| `truncated.png` | first half of a valid 160x120 PNG |
| `not_an_image.jpg` | a text file with a `.jpg` extension |
| `garbage.png` | PNG signature followed by 512 pseudo-random bytes |
| `bomb.png` | valid PNG structure (correct CRCs) whose IHDR declares 100000x100000 8-bit grey; IDAT holds a single zero row |
| `bomb.jpg` | valid 64x48 baseline JPEG with its SOF0 patched to declare 65000x65000 |
| `unsupported.heic` | 36 bytes: ISO-BMFF `ftyp` box (`heic`, compatible `mif1 heic`) + empty `meta` box header |
| `bad_segment.jpg` | SOI + JFIF APP0 + APP1 (`Exif`) whose length field (0x4000) runs past EOF |

## `sample/` – the folder used by the README's main command

Folder and file names deliberately contain patient-like names and dates;
the tool must not carry them into output names or contents. Every file has
the Artist canary; JPEG/WebP files also carry the full EXIF canary set and GPS.

| File | Format | DateTimeOriginal | Notes |
|---|---|---|---|
| `Doe_Jane_1961-04-02/IMG_2021-03-04_before.jpg` | JPEG 240x180 | 2021:03:04 09:10:11 | Orientation 1 |
| `Doe_Jane_1961-04-02/IMG_2021-09-10_during.jpg` | JPEG 240x180 | 2021:09:10 10:20:30 | Orientation 1 |
| `Doe_Jane_1961-04-02/IMG_2022-06-01_after.jpg` | JPEG 240x180 | 2022:06:01 11:22:33 | Orientation 1 |
| `Smith_John/2020-01-15_wound_left_leg.png` | PNG 240x180 | 2020:01:15 14:30:00 (eXIf) | tEXt Author / Description (MRN) / Creation Time, tIME, eXIf Artist + Model |
| `Smith_John/2020-02-01_wound_left_leg.webp` | WebP lossy 240x180 | 2020:02:01 15:00:00 | VP8X + EXIF (full set, GPS) |
| `Smith_John/IMG_20200301_rotated.jpg` | JPEG 240x180 stored | 2020:03:01 16:45:00 | Orientation 6 (displays as 180x240), full EXIF set |
MDEOF

# HEIF fixtures (heif-enc from libheif-examples, avifenc from libavif-bin,
# plus byte-level injection).
if command -v heif-enc >/dev/null 2>&1 && command -v avifenc >/dev/null 2>&1; then
    bash "$ROOT/scripts/make-heif-fixtures.sh" >/dev/null
else
    echo "make-fixtures: heif-enc (libheif-examples) or avifenc (libavif-bin) missing: fixtures/heif left as they are" >&2
fi

echo "make-fixtures: done" >&2
find "$FX" -type f | sort | while read -r f; do
    printf '%8d  %s\n' "$(stat -c %s "$f")" "${f#"$ROOT"/}"
done
du -sh "$FX" | awk '{print "make-fixtures: total " $1}' >&2
bash "$ROOT/scripts/make-tiff-fixtures.sh"   # fixtures/tiff/ (its own script: needs no Pillow)
