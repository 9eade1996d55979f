#!/usr/bin/env bash
# Regenerates fixtures/tiff/: small synthetic TIFFs covering the layouts the
# lossless TIFF rewrite must carry (pages, tiles, BigTIFF, JPEG, 16-bit
# gray+alpha, CIELab, CMYK, float, CCITT G4, both byte orders) and the
# metadata it must drop (EXIF/GPS/XMP/IPTC/Photoshop canaries, text tags on
# page 2, reduced-resolution IFD1, SubIFDs, GeoTIFF tags).
#
#   bash scripts/make-tiff-fixtures.sh     (also run by make-fixtures.sh)
#
# Needs ImageMagick (convert), libtiff-tools (tiffcp, tiffset), exiftool and
# python3 (stdlib only). Everything is synthetic.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in convert tiffcp tiffset exiftool python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-tiff-fixtures: missing tool: $tool" >&2; exit 1; }
done
OUT=fixtures/tiff
T="$(mktemp -d "${TMPDIR:-/tmp}/photodeid-tiff.XXXXXX")"
trap 'rm -rf "$T"' EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*.tif

ARTIST="Jane Q. Patientname"
SERIAL="SN-PHI-7731-XQ"
MRN="MRN-00424242"
MODEL="PatientCam Model Z9"
XMPC="XMP-CANARY-5c1e"
et() { exiftool -q -overwrite_original "$@"; }
# convert writes its own date and software tags; +set and -strip keep the files stable.
im() { convert "$@"; }
plain() { tiffcp -c none "$1" "$2"; }

# A 48x32 picture with structure (gradients and blocks), as 8-bit RGB.
im -size 48x32 gradient:red-blue \( -size 48x32 gradient:yellow-black -rotate 90 -resize 48x32\! \) \
    -compose multiply -composite -fill green -draw "rectangle 4,4 14,12" -depth 8 -type TrueColor -strip "$T/rgb.tif"

# multipage.tif: 3 pages, big-endian, the text and EXIF canaries on page 2.
im -strip "$T/rgb.tif" \( "$T/rgb.tif" -rotate 180 \) \( "$T/rgb.tif" -negate \) -compress lzw "$T/multi.tif"
tiffcp -B -c lzw "$T/multi.tif" "$OUT/multipage.tif"
tiffset -d 1 -s 315 "$ARTIST" "$OUT/multipage.tif"
tiffset -d 1 -s 270 "$MRN" "$OUT/multipage.tif"
tiffset -d 1 -s 272 "$MODEL" "$OUT/multipage.tif"
tiffset -d 2 -s 305 "$SERIAL" "$OUT/multipage.tif"
tiffset -d 2 -s 274 6 "$OUT/multipage.tif"

# tiled.tif: 16x16 tiles, Deflate + predictor, little-endian.
tiffcp -L -t -w 16 -l 16 -c zip:2 "$T/rgb.tif" "$OUT/tiled.tif"
tiffset -s 315 "$ARTIST" "$OUT/tiled.tif"

# bigtiff.tif: BigTIFF, big-endian, PackBits.
tiffcp -8 -B -c packbits "$T/rgb.tif" "$OUT/bigtiff.tif"
tiffset -s 315 "$ARTIST" "$OUT/bigtiff.tif"

# jpeg.tif: JPEG-in-TIFF (YCbCr, JPEGTables), with the full canary set.
tiffcp -c jpeg:75 -r 16 "$T/rgb.tif" "$OUT/jpeg.tif"

# gray16_alpha.tif: 16-bit gray + unassociated alpha, as ImageMagick writes it.
im "$T/rgb.tif" -colorspace gray -depth 16 \( +clone -fx 'i/w' \) -alpha off -compose copyopacity \
    -composite -strip -compress zip "$OUT/gray16_alpha.tif"

# cielab.tif, cmyk.tif, float32.tif, fax_g4.tif
im "$T/rgb.tif" -strip -colorspace Lab "$OUT/cielab.tif"
im "$T/rgb.tif" -strip -colorspace CMYK -compress lzw "$OUT/cmyk.tif"
# (ImageMagick 7 writes the float file, then complains about a Predictor tag: checked below.)
im "$T/rgb.tif" -strip -colorspace gray -depth 32 -define quantum:format=floating-point "$OUT/float32.tif" 2>/dev/null || true
tiffinfo "$OUT/float32.tif" >/dev/null
im "$T/rgb.tif" -strip -colorspace gray -threshold 50% -monochrome -compress Group4 "$OUT/fax_g4.tif"
for f in cielab cmyk float32 fax_g4 gray16_alpha; do tiffset -s 315 "$ARTIST" "$OUT/$f.tif"; done

# canaries.tif: little-endian RGB with every metadata kind exiftool writes.
plain "$T/rgb.tif" "$OUT/canaries.tif"
et "-IFD0:Make=FixtureCam" "-IFD0:Model=$MODEL" "-IFD0:Artist=$ARTIST" "-IFD0:ImageDescription=$MRN" \
   "-IFD0:Software=$SERIAL" "-IFD0:ModifyDate=2021:03:04 09:10:11" "-IFD0:Copyright=$ARTIST" \
   "-IFD0:HostComputer=$SERIAL" "-IFD0:DocumentName=$MRN" "-IFD0:XPAuthor=$ARTIST" \
   "-ExifIFD:SerialNumber=$SERIAL" "-ExifIFD:UserComment=$MRN" "-ExifIFD:DateTimeOriginal=2021:03:04 09:10:11" \
   "-GPS:GPSLatitude=40.7128" "-GPS:GPSLatitudeRef=N" "-GPS:GPSLongitude=74.0060" "-GPS:GPSLongitudeRef=W" \
   "-XMP-dc:Creator=$ARTIST" "-XMP-dc:Description=$XMPC" "-IPTC:By-line=$ARTIST" "-IPTC:Caption-Abstract=$MRN" \
   "-Photoshop:CopyrightFlag=True" "-Photoshop:URL=$XMPC" "$OUT/canaries.tif"
et "-IFD0:Make=FixtureCam" "-IFD0:Model=$MODEL" "-IFD0:Artist=$ARTIST" "-ExifIFD:SerialNumber=$SERIAL" \
   "-GPS:GPSLatitude=40.7128" "-GPS:GPSLatitudeRef=N" "-XMP-dc:Creator=$ARTIST" "-IPTC:By-line=$ARTIST" \
   "$OUT/jpeg.tif"

# thumb_ifd1.tif: a reduced-resolution image (NewSubfileType 1) as IFD1.
im "$T/rgb.tif" \( "$T/rgb.tif" -resize 12x8 \) -strip "$T/two.tif"
plain "$T/two.tif" "$OUT/thumb_ifd1.tif"
tiffset -d 1 -s 254 1 "$OUT/thumb_ifd1.tif"
tiffset -d 1 -s 315 "$ARTIST" "$OUT/thumb_ifd1.tif"

# subifd_geotiff.tif: a preview in SubIFDs, GeoTIFF tags (a location) and Photoshop
# ImageSourceData, added by byte surgery (no common tool writes them).
plain "$T/rgb.tif" "$T/base.tif"
python3 - "$T/base.tif" "$OUT/subifd_geotiff.tif" "$ARTIST" <<'PY'
import struct, sys
src, dst, artist = sys.argv[1], sys.argv[2], sys.argv[3].encode() + b"\0"
b = bytearray(open(src, "rb").read())
assert b[:4] == b"II*\0"
ifd = struct.unpack_from("<I", b, 4)[0]
n = struct.unpack_from("<H", b, ifd)[0]
entries = [struct.unpack_from("<HHII", b, ifd + 2 + 12 * i) for i in range(n)]
def blob(data):
    if len(b) % 2: b.append(0)
    at = len(b); b.extend(data); return at
# The preview: an 8x4 gray image whose own IFD carries the Artist canary.
pix = blob(bytes(range(0, 256, 8)))
art = blob(artist)
sub = [(254, 4, 1, 1), (256, 3, 1, 8), (257, 3, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
       (273, 4, 1, pix), (277, 3, 1, 1), (278, 3, 1, 4), (279, 4, 1, 32), (315, 2, len(artist), art)]
def write_ifd(es):
    if len(b) % 2: b.append(0)
    at = len(b)
    b.extend(struct.pack("<H", len(es)))
    for t, k, c, v in sorted(es):
        b.extend(struct.pack("<HHI", t, k, c) + (struct.pack("<HH", v, 0) if k == 3 and c == 1 else struct.pack("<I", v)))
    b.extend(struct.pack("<I", 0)); return at
sub_at = write_ifd(sub)
scale = blob(struct.pack("<3d", 0.5, 0.5, 0))
tie = blob(struct.pack("<6d", 0, 0, 0, -74.0060, 40.7128, 0))
keys = blob(struct.pack("<16H", 1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326))
ascii_ = blob(b"WGS 84 " + artist)
isd = blob(b"Adobe Photoshop Document Data Block\0" + artist)
entries += [(330, 13, 1, sub_at), (33550, 12, 3, scale), (33922, 12, 6, tie), (34735, 3, 16, keys),
            (34737, 2, len(artist) + 7, ascii_), (37724, 7, len(artist) + 36, isd)]
struct.pack_into("<I", b, 4, write_ifd(entries))
open(dst, "wb").write(b)
PY

# little-endian and big-endian copies of the same 8-bit RGB, with text tags.
tiffcp -L -c lzw:2 "$T/rgb.tif" "$OUT/le_lzw.tif"
tiffcp -B -c none "$T/rgb.tif" "$OUT/be_plain.tif"
for f in le_lzw be_plain; do
    tiffset -s 315 "$ARTIST" "$OUT/$f.tif"
    tiffset -s 305 "$SERIAL" "$OUT/$f.tif"
done

# dng.tif: a TIFF that says it is a DNG (must be refused as camera raw).
plain "$T/rgb.tif" "$OUT/dng.tif"
et "-DNGVersion=1.4.0.0" "$OUT/dng.tif" 2>/dev/null || python3 - "$OUT/dng.tif" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
ifd = struct.unpack_from("<I", b, 4)[0]
n = struct.unpack_from("<H", b, ifd)[0]
es = [struct.unpack_from("<HHII", b, ifd + 2 + 12 * i) for i in range(n)] + [(50706, 1, 4, 0x00000401)]
if len(b) % 2: b.append(0)
at = len(b)
b.extend(struct.pack("<H", len(es)))
for e in sorted(es): b.extend(struct.pack("<HHII", *e))
b.extend(struct.pack("<I", 0))
struct.pack_into("<I", b, 4, at)
open(sys.argv[1], "wb").write(b)
PY

ls -l "$OUT" >&2
