#!/usr/bin/env bash
# Regenerates the HEIF fixtures under fixtures/heif/ (called by make-fixtures.sh,
# or alone). Pictures come from the committed JPEG/PNG fixtures, encoded by
# Debian's heif-enc (libheif-examples) and avifenc (libavif-bin: heif-enc 1.15
# ignores its --matrix_coefficients/--full_range_flag and cannot make grids),
# metadata written by heif-enc (it
# carries the JPEG's Exif, XMP and ICC) and exiftool (an Exif thumbnail), then
# byte-level injection here: irot/imir, a free box with content, a vendor
# box and a trailer after the last box. Canaries are those of fixtures/CANARIES.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in heif-enc avifenc exiftool convert python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-heif-fixtures: missing $tool" >&2; exit 1; }
done
OUT=fixtures/heif
mkdir -p "$OUT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/photodeid-heif.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cat >"$TMP/inject.py" <<'PY'
"""Adds irot/imir to the primary item, a free box with content, a vendor box
and a trailer. Shifts every iloc file offset by what the meta box grew."""
import struct, sys

src, dst, rot, mirror = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# Optional 5th argument "P,T,M": a colr nclx property (primaries, transfer,
# matrix; full range) for the primary, as x265 files from heif-enc lack one.
nclx = [int(v) for v in sys.argv[5].split(',')] if len(sys.argv) > 5 else None
data = open(src, 'rb').read()

def boxes(b, pos, end):
    while pos < end:
        size, kind = struct.unpack('>I4s', b[pos:pos + 8])
        yield kind, pos, size
        pos += size

def box(kind, body):
    return struct.pack('>I4s', len(body) + 8, kind) + body

top = list(boxes(data, 0, len(data)))
assert [k for k, _, _ in top] == [b'ftyp', b'meta', b'mdat'], top
_, mpos, msize = top[1]
meta = data[mpos:mpos + msize]
children = list(boxes(meta, 12, len(meta)))
primary = None
for kind, p, s in children:
    if kind == b'pitm':
        primary = struct.unpack('>H', meta[p + 12:p + 14])[0]

new_props = b''
if nclx:
    new_props += box(b'colr', b'nclx' + struct.pack('>HHHB', *nclx, 0x80))
if rot:
    new_props += box(b'irot', bytes([rot]))
if mirror:
    new_props += box(b'imir', bytes([mirror - 1]))

def rebuild_iprp(body):
    out = b''
    nprops = 0
    for kind, p, s in boxes(body, 0, len(body)):
        if kind == b'ipco':
            ipco = body[p + 8:p + s]
            nprops = len(list(boxes(ipco, 0, len(ipco))))
            out += box(b'ipco', ipco + new_props)
    added = [nprops + 1 + i for i in range(len(new_props) and (bool(nclx) + bool(rot) + bool(mirror)))]
    for kind, p, s in boxes(body, 0, len(body)):
        if kind != b'ipma':
            continue
        v_flags = body[p + 8:p + 12]
        assert v_flags == b'\0\0\0\0', 'small ipma only'
        q = p + 12
        count = struct.unpack('>I', body[q:q + 4])[0]
        q += 4
        entries = b''
        for _ in range(count):
            item, n = struct.unpack('>HB', body[q:q + 3])
            assoc = body[q + 3:q + 3 + n]
            q += 3 + n
            if item == primary:
                assoc += bytes(0x80 | i for i in added)
                n += len(added)
            entries += struct.pack('>HB', item, n) + assoc
        out += box(b'ipma', v_flags + struct.pack('>I', count) + entries)
    return out

def shift_iloc(body, delta):
    b = bytearray(body)
    version = b[0]
    assert version in (0, 1)
    off_size, len_size = b[4] >> 4, b[4] & 15
    base_size, index_size = b[5] >> 4, (b[5] & 15 if version else 0)
    count = struct.unpack('>H', b[6:8])[0]
    q = 8
    def field(q, n):
        return int.from_bytes(b[q:q + n], 'big') if n else 0
    for _ in range(count):
        q += 2
        method = 0
        if version:
            method = struct.unpack('>H', b[q:q + 2])[0] & 15
            q += 2
        q += 2
        base_at, base = q, field(q, base_size)
        q += base_size
        n = struct.unpack('>H', b[q:q + 2])[0]
        q += 2
        if method == 0 and base_size:
            b[base_at:base_at + base_size] = (base + delta).to_bytes(base_size, 'big')
        for _ in range(n):
            q += index_size
            if method == 0 and not base_size:
                b[q:q + off_size] = (field(q, off_size) + delta).to_bytes(off_size, 'big')
            q += off_size + len_size
    return bytes(b)

def build_meta(delta):
    body = meta[8:12]
    for kind, p, s in children:
        inner = meta[p + 8:p + s]
        if kind == b'iprp':
            body += box(b'iprp', rebuild_iprp(inner))
        elif kind == b'iloc':
            body += box(b'iloc', shift_iloc(inner, delta))
        else:
            body += meta[p:p + s]
    return box(b'meta', body)

free = box(b'free', b'TRAILER-CANARY-9d2f in a free box')
vendor = box(b'sefd', b'SEFH vendor box: Jane Q. Patientname 2021:03:04 09:10:11')
grown = len(build_meta(0)) - msize + len(free)
head = data[:top[1][1]] + free + build_meta(grown)
mdat = data[top[2][1]:]
open(dst, 'wb').write(head + mdat + vendor + b'SEFT TRAILER-CANARY-9d2f raw trailer')
PY

cat >"$TMP/icc.py" <<'PY'
"""Writes a matrix/TRC ICC v2 RGB display profile for CICP primaries (D65
white, Bradford-adapted to D50) with the sRGB transfer curve: the
reference profile ImageMagick (lcms) converts the decoded samples with."""
import struct, sys

PRIMARIES = {  # H.273 table 2: (xr, yr, xg, yg, xb, yb), white D65
    1: (0.640, 0.330, 0.300, 0.600, 0.150, 0.060),   # sRGB / BT.709
    9: (0.708, 0.292, 0.170, 0.797, 0.131, 0.046),   # BT.2020
    12: (0.680, 0.320, 0.265, 0.690, 0.150, 0.060),  # Display P3 (SMPTE EG 432-1)
}
W65 = (0.3127, 0.3290)
D50 = (0.9642, 1.0, 0.8249)

def xyz(x, y):
    return (x / y, 1.0, (1 - x - y) / y)

def inv3(m):
    a, b, c = m[0]; d, e, f = m[1]; g, h, i = m[2]
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return [[(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
            [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
            [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det]]

def mul(m, v):
    return [sum(m[r][k] * v[k] for k in range(3)) for r in range(3)]

def mmul(a, b):
    return [[sum(a[r][k] * b[k][c] for k in range(3)) for c in range(3)] for r in range(3)]

def rgb_to_xyz(p):
    cols = [xyz(p[0], p[1]), xyz(p[2], p[3]), xyz(p[4], p[5])]
    m = [[cols[c][r] for c in range(3)] for r in range(3)]
    s = mul(inv3(m), xyz(*W65))
    return [[m[r][c] * s[c] for c in range(3)] for r in range(3)]

BRADFORD = [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]

def adapt(src, dst):
    s, d = mul(BRADFORD, src), mul(BRADFORD, dst)
    scale = [[d[i] / s[i] if i == j else 0 for j in range(3)] for i in range(3)]
    return mmul(inv3(BRADFORD), mmul(scale, BRADFORD))

def s15(v):
    return struct.pack('>i', int(round(v * 65536)))

def xyz_tag(v):
    return b'XYZ \0\0\0\0' + b''.join(s15(c) for c in v)

def srgb_eotf(v):
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

def profile(code, name):
    m = mmul(adapt(xyz(*W65), D50), rgb_to_xyz(PRIMARIES[code]))
    curve = b'curv\0\0\0\0' + struct.pack('>I', 1024) + b''.join(
        struct.pack('>H', int(round(srgb_eotf(i / 1023) * 65535))) for i in range(1024))
    desc = b'desc\0\0\0\0' + struct.pack('>I', len(name) + 1) + name + b'\0' + b'\0' * 12 + b'\0' * 67
    tags = [
        (b'desc', desc),
        (b'cprt', b'text\0\0\0\0' + b'No copyright, use freely\0'),
        (b'wtpt', xyz_tag(D50)),
        (b'rXYZ', xyz_tag([m[0][0], m[1][0], m[2][0]])),
        (b'gXYZ', xyz_tag([m[0][1], m[1][1], m[2][1]])),
        (b'bXYZ', xyz_tag([m[0][2], m[1][2], m[2][2]])),
        (b'rTRC', curve), (b'gTRC', curve), (b'bTRC', curve),
    ]
    table = struct.pack('>I', len(tags))
    data = b''
    at = 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        table += sig + struct.pack('>II', at + len(data), len(body))
        data += body + b'\0' * (-len(body) % 4)
    size = 128 + len(table) + len(data)
    header = struct.pack('>I', size) + b'\0\0\0\0' + struct.pack('>I', 0x02100000) + b'mntrRGB XYZ '
    header += struct.pack('>6H', 2024, 1, 1, 0, 0, 0) + b'acsp' + b'\0' * 4 + b'\0' * 4
    header += b'\0' * 8 + b'\0' * 8 + b'\0' * 4 + b''.join(s15(c) for c in D50) + b'\0' * 4
    header += b'\0' * (128 - len(header))
    assert len(header) == 128
    return header + table + data

code, out = int(sys.argv[1]), sys.argv[2]
open(out, 'wb').write(profile(code, {1: b'sRGB (reference)', 9: b'BT.2020 (reference)', 12: b'Display P3 (reference)'}[code]))
PY

convert fixtures/dirty/jpeg_full.jpg -resize 32x24 "$TMP/thumb.jpg"
# Full set: Exif (GPS, serials, dates) + XMP from the JPEG, ICC from the second
# input, which is also a second top-level image; a thmb item; an Exif thumbnail.
heif-enc -q 80 -t 32 -o "$TMP/full.heic" fixtures/dirty/jpeg_full.jpg fixtures/dirty/jpeg_icc.jpg
exiftool -q -overwrite_original '-ThumbnailImage<='"$TMP/thumb.jpg" "$TMP/full.heic"
python3 "$TMP/inject.py" "$TMP/full.heic" "$OUT/heic_full.heic" 0 0
# Orientation: the 96x64 orientation test image turned by irot and mirrored by imir.
convert fixtures/dirty/jpeg_orient_1.jpg -strip "$TMP/orient.png"
heif-enc -q 90 -o "$TMP/orient.heic" "$TMP/orient.png"
python3 "$TMP/inject.py" "$TMP/orient.heic" "$OUT/heic_irot_imir.heic" 1 1
# Alpha plane, with the PNG's ICC profile and no metadata.
heif-enc -q 80 -o "$OUT/heic_alpha.heic" fixtures/dirty/png_rgba.png
# 10 bits per sample, from a 16-bit PNG (PNG48: ImageMagick otherwise writes 8 bits).
convert fixtures/dirty/jpeg_orient_1.jpg -depth 16 "PNG48:$TMP/deep.png"
heif-enc -q 90 -b 10 -o "$OUT/heic_10bit.heic" "$TMP/deep.png"
# AVIF with the JPEG's Exif and XMP.
heif-enc -A -q 60 -o "$OUT/avif_meta.avif" fixtures/dirty/jpeg_full.jpg
# AVIF turned by irot and mirrored by imir (the AVIF region test's picture).
heif-enc -A -q 90 -o "$TMP/orient.avif" "$TMP/orient.png"
python3 "$TMP/inject.py" "$TMP/orient.avif" "$OUT/avif_irot_imir.avif" 1 1
# AVIF chroma layouts and matrices for the pure-Rust decoder's YUV to RGB:
# 4:4:4 BT.709 limited range, 4:2:2, RGB coded as identity (GBR), monochrome 4:0:0.
# avifenc writes the matrix and range it is given into both the AV1 sequence
# header and colr nclx (heif-enc 1.15 writes 6/full whatever it is told).
AVIFENC="avifenc -c aom -s 8 --min 4 --max 8"
$AVIFENC -y 444 --cicp 1/13/1 -r limited "$TMP/orient.png" "$OUT/avif_444_bt709_limited.avif" >/dev/null
heif-enc -A -q 85 -p chroma=422 -o "$OUT/avif_422.avif" "$TMP/orient.png"
$AVIFENC -y 444 --cicp 1/13/0 -r full "$TMP/orient.png" "$OUT/avif_rgb_identity.avif" >/dev/null
# Identity with limited range: G, B and R each coded like luma (16..235).
# libheif 1.15 reads it as full range (washed out); libavif and we do not.
# Primaries 2/2: with 1/13/0 AV1 implies full range and writes no range bit.
$AVIFENC -y 444 --cicp 2/2/0 -r limited "$TMP/orient.png" "$OUT/avif_identity_limited.avif" >/dev/null
# A 2x2 grid of 160x120 tiles (320x240), and the same grid with its output
# size cut to 300x230 in the grid descriptor and the grid's ispe: the right
# and bottom tiles are cropped.
convert fixtures/dirty/jpeg_full.jpg -strip "PNG24:$TMP/full.png"
$AVIFENC -y 420 -g 2x2 "$TMP/full.png" "$OUT/avif_grid.avif" >/dev/null
python3 - "$OUT/avif_grid.avif" "$OUT/avif_grid_cropped.avif" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
pairs = [
    (b'\0\0\x01\x01' + struct.pack('>HH', 320, 240), b'\0\0\x01\x01' + struct.pack('>HH', 300, 230)),
    (b'ispe\0\0\0\0' + struct.pack('>II', 320, 240), b'ispe\0\0\0\0' + struct.pack('>II', 300, 230)),
]
for old, new in pairs:
    assert d.count(old) == 1, old
    d = d.replace(old, new)
open(sys.argv[2], 'wb').write(d)
PY
convert "$TMP/orient.png" -colorspace Gray "$TMP/gray.png"
heif-enc -A -q 85 -o "$OUT/avif_gray.avif" "$TMP/gray.png"
# AVIF with an alpha plane and 12 bits per sample (PNG64: a real 16-bit input;
# bookworm's aom fails or aborts on 10-bit with alpha).
convert fixtures/dirty/png_rgba.png -depth 16 "PNG64:$TMP/deep_rgba.png"
heif-enc -A -q 90 -b 12 -o "$OUT/avif_alpha_12bit.avif" "$TMP/deep_rgba.png"
# Wide gamut with nclx only (no ICC): colour patches coded as Display P3 (AVIF)
# and BT.2020 (HEIC, its colr nclx injected: heif-enc writes none for x265), 4:4:4.
# The reference ICC profiles of those primaries let the tests check the decoded
# colours against heif-convert + ImageMagick (lcms).
convert -size 16x16 xc:'#b04040' xc:'#40a040' xc:'#4040b0' xc:'#a0a040' +append \
    \( -size 16x16 xc:'#40a0a0' xc:'#a040a0' xc:'#808080' xc:'#c08040' +append \) \
    -append -strip "PNG24:$TMP/patches.png"
heif-enc -A -q 95 -p chroma=444 --colour_primaries 12 --transfer_characteristic 13 \
    --matrix_coefficients 6 -o "$TMP/p3.avif" "$TMP/patches.png"
# heif-enc 1.15 writes primaries and transfer as 2 (unspecified) whatever it is
# told: set them to 12 (Display P3) and 13 (sRGB curve) in its colr nclx.
python3 - "$TMP/p3.avif" "$OUT/avif_nclx_p3.avif" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
old = b'colrnclx\x00\x02\x00\x02\x00\x06'
assert d.count(old) == 1, 'expected one unspecified nclx'
open(sys.argv[2], 'wb').write(d.replace(old, b'colrnclx\x00\x0c\x00\x0d\x00\x06'))
PY
heif-enc -q 95 -p chroma=444 --colour_primaries 9 --transfer_characteristic 13 \
    --matrix_coefficients 6 -o "$TMP/bt2020.heic" "$TMP/patches.png"
python3 "$TMP/inject.py" "$TMP/bt2020.heic" "$OUT/heic_nclx_bt2020.heic" 0 0 9,13,6
mkdir -p fixtures/colour
python3 "$TMP/icc.py" 12 fixtures/colour/display_p3.icc
python3 "$TMP/icc.py" 9 fixtures/colour/bt2020.icc
python3 "$TMP/icc.py" 1 fixtures/colour/srgb.icc
ls -l "$OUT"
