#!/usr/bin/env bash
# Conformance run of photodeid against a corpus of real-camera photos.
#
#   bash scripts/conformance.sh                       (run from the repository root)
#   CORPUS=/path/to/exif-samples bash scripts/conformance.sh
#
# Cleans the whole corpus (default ../shared/corpus/exif-samples, read-only) as
# ONE batch into a temp folder and checks every output independently of
# photodeid, with exiftool and djpeg:
#
#   accounted      every input has an output, or a "photodeid: <path>: <reason>"
#                  line on stderr (and nothing written for it)
#   suspicious     no supported image that exiftool reads cleanly failed
#                  without a reason saying truncated/malformed/unsupported/too large
#   tags           `exiftool -a -G1 -s` shows only allow-listed tags (ALLOW_* below)
#   gps/serial/dates  reported on their own, on top of the allow-list
#   trailer        no exiftool trailer warning, nothing after the end of the image
#   warnings       no other (non-minor) exiftool warning on the output
#   type           output has the input's file type and a matching extension
#   orientation    JPEG/WebP outputs keep the original's IFD0 Orientation
#   pixels         JPEG outputs decode (djpeg -ppm) to exactly the input's pixels;
#                  HEIC/AVIF outputs decode (heif-convert) to exactly the input's
#   heif           heif-info shows the primary picture only (no thumbnail, depth, metadata)
#   tiff-structure TIFF outputs: same size, and ExtraSamples describes the extra
#                  channel(s) the way the input did
#   tiff-pages     TIFF outputs: tiffinfo reads every page, the page count is the
#                  input's full-resolution pages, and every page's pixels equal
#                  the input's (ImageMagick compare -metric AE = 0)
#   names          no input file stem or folder name appears in any output path
#   check          `photodeid check OUT` exits 0
#   thorough       `photodeid check --thorough` of the JPEG outputs, as they are and
#                  made progressive by jpegtran, finds nothing in the compressed data
#   unchanged      the corpus is byte-identical before and after (sha256sum)
#
# Every failure is printed as "FAIL [check] file: reason"; notes ("note ...")
# never fail the run.  Last line: "conformance: N passed, M failed".
# Exit status: 0 all passed (or corpus missing: skipped), 1 a check failed,
# 2 the run could not be set up.
#
# Environment: CORPUS (corpus folder), PHOTODEID (binary; default
# target/release/photodeid, built with `cargo build --release` if missing),
# KEEP=1 (keep the temp folder and print its path).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CORPUS="${CORPUS:-../shared/corpus/exif-samples}"
PHOTODEID="${PHOTODEID:-target/release/photodeid}"
KEEP="${KEEP:-0}"

if [[ ! -d "$CORPUS" ]]; then
    echo "conformance: skipped: corpus folder not found: $CORPUS"
    exit 0
fi

# ------------------------------------------------------------------- tools --
need() { # need COMMAND APT-PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "conformance: $1 not found; installing $2 with apt-get" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || true
    command -v "$1" >/dev/null 2>&1 || { echo "conformance: cannot install $2 (for $1)" >&2; exit 2; }
}
need exiftool libimage-exiftool-perl
need djpeg libjpeg-turbo-progs
need heif-convert libheif-examples
need jq jq
need perl perl
need sha256sum coreutils

if [[ ! -x "$PHOTODEID" ]]; then
    echo "conformance: $PHOTODEID missing; running cargo build --release" >&2
    cargo build --release --quiet
fi
PHOTODEID="$(cd "$(dirname "$PHOTODEID")" && pwd -P)/$(basename "$PHOTODEID")"
CORPUS_ABS="$(cd "$CORPUS" && pwd -P)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/photodeid-conformance.XXXXXX")"
cleanup() { if [[ $KEEP == 1 ]]; then echo "conformance: kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
OUT="$WORK/out"
MAP="$WORK/map.csv"

# ------------------------------------------------------------- allow-lists --
# Everything exiftool shows on an output must be listed here; anything else
# (EXIF/ExifIFD/IFD1/GPS/MakerNotes/XMP*/IPTC/Photoshop/Comment/MPF/APP*/JUMBF,
# PNG text, RIFF INFO, GIF comments, vendor trailers, ...) fails [tags].
#
# Whole groups that are fine:
#   System, ExifTool  file-system facts / exiftool's own (Warning/Error checked apart)
#   JFIF              kept (APP0 density header)
#   ICC_Profile, ICC-*  the colour profile, kept on purpose
ALLOW_GROUPS=(System ExifTool JFIF ICC_Profile 'ICC-*')
# Single tags, as Group:Tag:
ALLOW_TAGS=(
    # exiftool's file-level facts (File:Comment is a JPEG COM segment: not allowed)
    File:FileType File:FileTypeExtension File:MIMEType File:ImageWidth File:ImageHeight
    File:EncodingProcess File:BitsPerSample File:ColorComponents File:YCbCrSubSampling
    File:ExifByteOrder
    Composite:ImageSize Composite:Megapixels
    # the lone EXIF tag photodeid keeps (value checked by [orientation])
    IFD0:Orientation
    # Adobe APP14: colour-transform flags the decoder needs, nothing identifying
    Adobe:DCTEncodeVersion Adobe:APP14Flags0 Adobe:APP14Flags1 Adobe:ColorTransform
    # PNG structure (IHDR, PLTE, tRNS, bKGD, sBIT, gAMA, cHRM, sRGB, pHYs, iCCP name, acTL)
    PNG:ImageWidth PNG:ImageHeight PNG:BitDepth PNG:ColorType PNG:Compression PNG:Filter
    PNG:Interlace PNG:Palette PNG:Transparency PNG:BackgroundColor PNG:SignificantBits
    PNG:Gamma PNG:SRGBRendering PNG:WhitePointX PNG:WhitePointY PNG:RedX PNG:RedY
    PNG:GreenX PNG:GreenY PNG:BlueX PNG:BlueY PNG:ProfileName
    PNG:AnimationFrames PNG:AnimationPlays
    PNG-pHYs:PixelsPerUnitX PNG-pHYs:PixelsPerUnitY PNG-pHYs:PixelUnits
    # WebP structure (VP8/VP8L/VP8X/ALPH/ANIM headers)
    RIFF:VP8Version RIFF:ImageWidth RIFF:ImageHeight RIFF:HorizontalScale RIFF:VerticalScale
    RIFF:WebP_Flags RIFF:AlphaPreprocessing RIFF:AlphaFiltering RIFF:AlphaCompression
    RIFF:BackgroundColor RIFF:AnimationLoopCount
    # GIF structure
    GIF:GIFVersion GIF:ImageWidth GIF:ImageHeight GIF:HasColorMap GIF:ColorResolutionDepth
    GIF:BitsPerPixel GIF:BackgroundColor GIF:PixelAspectRatio GIF:AnimationIterations
    GIF:FrameCount GIF:Duration GIF:TransparentColor
    # HEIF/AVIF structure (ftyp, hdlr, hvcC/av1C, ispe, irot/imir, colr nclx, pixi, mdat)
    QuickTime:MajorBrand QuickTime:MinorVersion QuickTime:CompatibleBrands QuickTime:HandlerType
    QuickTime:HEVCConfigurationVersion QuickTime:GeneralProfileSpace QuickTime:GeneralTierFlag
    QuickTime:GeneralProfileIDC QuickTime:GenProfileCompatibilityFlags
    QuickTime:ConstraintIndicatorFlags QuickTime:GeneralLevelIDC
    QuickTime:MinSpatialSegmentationIDC QuickTime:ParallelismType QuickTime:ChromaFormat
    QuickTime:BitDepthLuma QuickTime:BitDepthChroma QuickTime:AverageFrameRate
    QuickTime:ConstantFrameRate QuickTime:NumTemporalLayers QuickTime:TemporalIDNested
    QuickTime:ImageSpatialExtent QuickTime:Rotation QuickTime:ImagePixelDepth
    QuickTime:MediaDataSize QuickTime:MediaDataOffset QuickTime:ColorProfiles
    QuickTime:ColorPrimaries QuickTime:TransferCharacteristics QuickTime:MatrixCoefficients
    QuickTime:VideoFullRangeFlag QuickTime:AV1ConfigurationVersion QuickTime:SeqProfile
    QuickTime:SeqLevelIdx0 QuickTime:SeqTier0 QuickTime:HighBitDepth QuickTime:TwelveBit
    QuickTime:ChromaFormat QuickTime:ChromaSamplePosition QuickTime:AuxiliaryImageType
    QuickTime:Monochrome QuickTime:ChromaSubsampling QuickTime:InitialDelaySamples
    Meta:PrimaryItemReference Meta:MetaImageSize
)
# Extra tags allowed in the IFDs (pages) of TIFF outputs only: the image structure
# itself, as src/container/tiff.rs `rule` lists it (exiftool's names).
ALLOW_TIFF_IFD0=(
    ImageWidth ImageHeight BitsPerSample Compression PhotometricInterpretation StripOffsets
    SamplesPerPixel RowsPerStrip StripByteCounts XResolution YResolution ResolutionUnit
    PlanarConfiguration Predictor SampleFormat ExtraSamples
    SubfileType OldSubfileType Thresholding CellWidth CellLength FillOrder Orientation
    MinSampleValue MaxSampleValue GrayResponseUnit GrayResponseCurve T4Options T6Options
    TransferFunction WhitePoint PrimaryChromaticities ColorMap HalftoneHints TileWidth
    TileLength TileOffsets TileByteCounts InkSet NumberofInks DotRange SMinSampleValue
    SMaxSampleValue TransferRange JPEGTables YCbCrCoefficients YCbCrSubSampling
    YCbCrPositioning ReferenceBlackWhite
    PreviewImageStart PreviewImageLength PreviewImage # exiftool's names for JPEG-compressed strips
)
# A failure of an image exiftool reads cleanly is only acceptable with a reason like:
# The reasons photodeid gives for a file it refuses on purpose, in its
# technical (--json) and plain (stderr, src/plain.rs) wordings.
GOOD_REASON='truncated|malformed|unsupported|too large|is damaged|ends early|cannot be used|too large to open'
SUPPORTED_TYPES=' JPEG PNG TIFF WEBP GIF HEIC AVIF '

declare -A ALLOW_TAG=() ALLOW_TIFF=()
for t in "${ALLOW_TAGS[@]}"; do ALLOW_TAG[$t]=1; done
for t in "${ALLOW_TIFF_IFD0[@]}"; do ALLOW_TIFF[$t]=1; done

group_allowed() {
    local g
    for g in "${ALLOW_GROUPS[@]}"; do
        # shellcheck disable=SC2053  # glob on purpose (ICC-*)
        [[ $1 == $g ]] && return 0
    done
    return 1
}

# ------------------------------------------------------------------ counters --
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); }

# [tiff-pages] tiff_pages INPUT OUTPUT LABEL: tiffinfo reads every output page,
# the full-resolution pages are all there, and each page's pixels are the input's.
tiff_pages() {
    command -v tiffinfo >/dev/null && command -v compare >/dev/null || {
        note tiff-pages "$3" "tiffinfo or ImageMagick compare missing: skipped"
        return
    }
    local info n_out n_in i ae problems=""
    info=$(tiffinfo "$2" 2>&1 >/dev/null) || problems+="tiffinfo: ${info:0:120}; "
    n_out=$(tiffinfo "$2" 2>/dev/null | grep -c '^TIFF Directory' || true)
    # Full-resolution input pages: directories without the reduced-resolution bit.
    n_in=$(tiffinfo "$1" 2>/dev/null | awk '/^TIFF Directory/{n++; r=0} /Subfile Type:.*reduced-resolution/{r++; n--} END{print n+0}')
    [[ $n_in == "$n_out" ]] || problems+="$n_in full-resolution page(s) in, $n_out out; "
    if [[ $n_in == "$n_out" && $(tiffinfo "$1" 2>/dev/null | grep -c '^TIFF Directory') == "$n_out" ]]; then
        for ((i = 0; i < n_out; i++)); do
            ae=$(compare -metric AE "$1[$i]" "$2[$i]" null: 2>&1 >/dev/null | grep -Eo '^[0-9.e+]+' | head -1)
            [[ ${ae:-x} == 0 ]] || problems+="page $((i + 1)) pixels differ (AE ${ae:-unreadable}); "
        done
    fi
    if [[ -z $problems ]]; then pass; else fail tiff-pages "$3" "$problems"; fi
}
fail() { # fail CHECK FILE REASON
    FAILED=$((FAILED + 1))
    printf 'FAIL [%s] %s: %s\n' "$1" "$2" "${3%; }"
}
note() { printf 'note [%s] %s: %s\n' "$1" "$2" "$3"; }
rel() { # path relative to the corpus, for messages
    local p="$1"
    [[ $p == "$CORPUS_ABS/"* ]] && p="${p#"$CORPUS_ABS/"}"
    printf '%s' "$p"
}
ext_lc() { local b="${1##*/}"; [[ $b == *.* ]] && { b="${b##*.}"; printf '%s' "${b,,}"; }; }

# ------------------------------------------------------------------ inputs --
# photodeid walks folders recursively and skips hidden entries; do the same.
INPUTS=()
while IFS= read -r -d '' f; do INPUTS+=("$f"); done < <(
    find "$CORPUS_ABS" -mindepth 1 -name '.*' -prune -o -type f -print0 | LC_ALL=C sort -z)
hidden=$(find "$CORPUS_ABS" -mindepth 1 -name '.*' -print | wc -l)
[[ $hidden -eq 0 ]] || note setup "$CORPUS" "$hidden hidden entries not counted (photodeid skips them)"
links=$(find "$CORPUS_ABS" -type l -print | wc -l)
[[ $links -eq 0 ]] || note setup "$CORPUS" "$links symlinks not counted"
echo "conformance: corpus $CORPUS_ABS: ${#INPUTS[@]} files"

corpus_hash() {
    (cd "$CORPUS_ABS" && find . -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' p; do
        if [[ -f $p && ! -L $p ]]; then sha256sum -- "$p"; else stat -c '%F %n' -- "$p"; fi
    done)
}
corpus_hash >"$WORK/corpus.before"

# ------------------------------------------------------------------- clean --
rc=0
"$PHOTODEID" clean "$CORPUS_ABS" -o "$OUT" --map "$MAP" --json --verbose \
    >"$WORK/clean.jsonl" 2>"$WORK/clean.err" || rc=$?
echo "conformance: photodeid clean exited $rc"

declare -A OUT_OF=() ERR_OF=() FMT_OF=() STATUS_OF=() IS_INPUT=() OUTPUT_SEEN=()
for f in "${INPUTS[@]}"; do IS_INPUT[$f]=1; done
n_cleaned=0
n_failed=0
if ! jq -e . "$WORK/clean.jsonl" >/dev/null 2>&1; then
    fail clean "$WORK/clean.jsonl" "--json output is not a stream of JSON objects"
    sed -n '1,5p' "$WORK/clean.jsonl" | sed 's/^/    /'
else
    while IFS= read -r -d '' status && IFS= read -r -d '' input && IFS= read -r -d '' output &&
        IFS= read -r -d '' err && IFS= read -r -d '' fmt; do
        if [[ -n ${STATUS_OF[$input]+x} ]]; then
            fail accounted "$(rel "$input")" "reported twice in --json (${STATUS_OF[$input]}, $status)"
        fi
        STATUS_OF[$input]=$status
        case $status in
        cleaned)
            n_cleaned=$((n_cleaned + 1))
            OUT_OF[$input]=$output
            FMT_OF[$input]=$fmt
            if [[ -n ${OUTPUT_SEEN[$output]+x} ]]; then
                fail accounted "$output" "output given to two inputs: $(rel "${OUTPUT_SEEN[$output]}") and $(rel "$input")"
            fi
            OUTPUT_SEEN[$output]=$input
            ;;
        failed)
            n_failed=$((n_failed + 1))
            ERR_OF[$input]=$err
            ;;
        *) fail accounted "$(rel "$input")" "unexpected --json status '$status'" ;;
        esac
        [[ -n ${IS_INPUT[$input]+x} ]] || fail accounted "$input" "--json names a file that is not in the corpus"
    done < <(jq -j 'select(has("input")) | [.status, .input, (.output // ""), (.error // ""), (.format // "")]
                    | map(tostring + "\u0000") | add' "$WORK/clean.jsonl")
    summary=$(jq -c 'select(has("summary")) | .summary | [.cleaned, .failed]' "$WORK/clean.jsonl")
    if [[ $summary == "[$n_cleaned,$n_failed]" ]]; then pass; else
        fail clean "$WORK/clean.jsonl" "summary object $summary does not match the per-file objects [$n_cleaned,$n_failed]"
    fi
fi
expected_rc=0
[[ $n_failed -eq 0 ]] || expected_rc=1
if [[ $rc -eq $expected_rc ]]; then pass; else
    fail clean "photodeid clean" "exit code $rc, expected $expected_rc ($n_cleaned cleaned, $n_failed failed)"
fi

# The --map CSV must tell the same story as --json --verbose.
if [[ ! -f $MAP ]]; then
    fail map "$MAP" "--map file was not written"
else
    declare -A MAP_OF=()
    map_ok=1
    while IFS= read -r -d '' orig && IFS= read -r -d '' pseudo; do
        if [[ $orig == "#ERROR" ]]; then
            fail map "$MAP" "$pseudo"
            map_ok=0
            continue
        fi
        MAP_OF[$orig]=$pseudo
    done < <(perl -e '
        local $/; my $s = <STDIN>; my (@row, $n);
        while (length $s) {
            my $f;
            if ($s =~ s/\A"((?:[^"]|"")*)"//) { ($f = $1) =~ s/""/"/g }
            else { $s =~ s/\A([^,\r\n"]*)//; $f = $1 }
            push @row, $f;
            next if $s =~ s/\A,//;
            unless ($s =~ s/\A\r?\n// or !length $s) { print "#ERROR\0bad CSV quoting in record ", $n + 1, "\0"; last }
            if ($n++ == 0) { print "#ERROR\0header is not original,pseudonym\0" unless "@row" eq "original pseudonym" }
            elsif (@row != 2) { print "#ERROR\0record $n has ", scalar @row, " fields\0" }
            else { print "$row[0]\0$row[1]\0" }
            @row = ();
        }' <"$MAP")
    for input in "${!OUT_OF[@]}"; do
        if [[ ${MAP_OF[$input]-} != "${OUT_OF[$input]}" ]]; then
            fail map "$(rel "$input")" "--map says '${MAP_OF[$input]-<missing>}', --json says '${OUT_OF[$input]}'"
            map_ok=0
        fi
    done
    for orig in "${!MAP_OF[@]}"; do
        if [[ -z ${OUT_OF[$orig]+x} ]]; then
            fail map "$(rel "$orig")" "in --map but not cleaned according to --json"
            map_ok=0
        fi
    done
    [[ $map_ok -eq 0 ]] || pass
fi

# --------------------------------------------------- accounting per input --
ERRTEXT=$'\n'"$(cat "$WORK/clean.err")"$'\n'
declare -A STDERR_REASON=()
for input in "${INPUTS[@]}"; do
    r=$(rel "$input")
    if [[ -n ${OUT_OF[$input]+x} ]]; then
        if [[ -f ${OUT_OF[$input]} ]]; then pass; else
            fail accounted "$r" "--json names output ${OUT_OF[$input]}, which does not exist"
        fi
        if [[ $ERRTEXT == *$'\n'"photodeid: $input: "* ]]; then
            fail accounted "$r" "cleaned, yet stderr also reports an error for it"
        fi
        continue
    fi
    prefix=$'\n'"photodeid: $input: "
    if [[ $ERRTEXT != *"$prefix"* ]]; then
        if [[ -n ${ERR_OF[$input]+x} ]]; then
            fail accounted "$r" "failed in --json (${ERR_OF[$input]}) but no 'photodeid: <path>: <reason>' line on stderr"
        else
            fail accounted "$r" "no output and no error: not accounted for"
        fi
        continue
    fi
    rest=${ERRTEXT#*"$prefix"}
    reason=${rest%%$'\n'*}
    STDERR_REASON[$input]=$reason
    if [[ -z ${reason// /} ]]; then
        fail accounted "$r" "stderr names the file but gives no reason"
    elif [[ -n ${ERR_OF[$input]+x} && ${ERR_OF[$input]} != "$reason" && $reason != *"${ERR_OF[$input]#*: }"* ]]; then
        # stderr speaks plain words (src/plain.rs) and, with --verbose, carries the
        # --json error's technical reason; it must say the same thing.
        fail accounted "$r" "stderr reason '$reason' does not carry the --json error '${ERR_OF[$input]}'"
    else
        pass
    fi
done

# Nothing but the reported outputs may be written (nothing for failed files).
declare -A IS_OUTPUT=()
for o in "${OUT_OF[@]}"; do IS_OUTPUT[$o]=1; done
stray=0
if [[ -d $OUT ]]; then
    while IFS= read -r -d '' p; do
        if [[ ! -f $p || -z ${IS_OUTPUT[$p]+x} ]]; then
            fail accounted "$p" "in the output folder but not reported as any input's output"
            stray=1
        fi
    done < <(find "$OUT" -mindepth 1 ! -type d -print0)
fi
[[ $stray -eq 1 ]] || pass

# ------------------------------------------------- suspicious failures --
# A supported image that exiftool reads without error or non-minor warning
# should not fail unless photodeid says why (truncated/malformed/...).
for input in "${INPUTS[@]}"; do
    [[ -z ${OUT_OF[$input]+x} ]] || continue
    r=$(rel "$input")
    reason=${STDERR_REASON[$input]-${ERR_OF[$input]-}}
    ftype=""
    verr=""
    vwarn=""
    while IFS= read -r line; do
        [[ $line =~ ^\[([^]]+)\][[:space:]]+([^[:space:]]+)[[:space:]]*:[[:space:]]?(.*)$ ]] || continue
        case ${BASH_REMATCH[1]}:${BASH_REMATCH[2]} in
        File:FileType) ftype=${BASH_REMATCH[3]} ;;
        ExifTool:Error) verr=${BASH_REMATCH[3]} ;;
        ExifTool:Warning) [[ ${BASH_REMATCH[3]} == "[minor]"* || -n $vwarn ]] || vwarn=${BASH_REMATCH[3]} ;;
        esac
    done < <(exiftool -validate -a -G1 -s -FileType -Error -Warning "$input" 2>/dev/null || true)
    if [[ $SUPPORTED_TYPES != *" $ftype "* || -n $verr || -n $vwarn ]]; then
        note failed "$r" "$reason [exiftool: type ${ftype:-unknown}${verr:+; error: $verr}${vwarn:+; warning: $vwarn}]"
        pass
        continue
    fi
    extra=""
    if [[ $ftype == JPEG ]]; then
        dj=$(djpeg -ppm "$input" 2>&1 >/dev/null | head -n 1 || true)
        extra=" (djpeg: ${dj:-decodes without warnings})"
    fi
    if [[ ${reason,,} =~ $GOOD_REASON ]]; then
        note suspicious "$r" "$ftype that exiftool reads cleanly failed, explained: $reason$extra"
        pass
    else
        fail suspicious "$r" "suspicious failure: $ftype that exiftool reads cleanly failed with '$reason'$extra"
    fi
done

# ------------------------------------------------------ per-output checks --
# Stems and folder names of all inputs (>= 4 characters; shorter ones match
# hex pseudonyms by chance).
declare -A NAMEPARTS=()
for input in "${INPUTS[@]}"; do
    r=$(rel "$input")
    IFS=/ read -r -a parts <<<"$r"
    last=$((${#parts[@]} - 1))
    for i in "${!parts[@]}"; do
        part=${parts[$i]}
        if [[ $i -eq $last && $part == ?*.* ]]; then part=${part%.*}; fi
        [[ ${#part} -ge 4 ]] && NAMEPARTS[${part,,}]=$r
    done
done

tv() { # tv DUMP TAG: value of an IFD0 tag in an `exiftool -a -G1 -s` dump
    awk -v t="$2" '$1 == "[IFD0]" && $2 == t { sub(/^[^:]*: /, ""); print; exit }' <<<"$1"
}
ORIENT1_DROPPED=0
orientation_of() { exiftool -m -n -s3 -IFD0:Orientation "$1" 2>/dev/null | head -n 1; }

for input in "${INPUTS[@]}"; do
    [[ -n ${OUT_OF[$input]+x} ]] || continue
    out=${OUT_OF[$input]}
    [[ -f $out ]] || continue
    r=$(rel "$input")
    label="$out (from $r)"

    dump=$(exiftool -a -G1 -s -n "$out" 2>&1) || true
    in_type=$(exiftool -m -s3 -FileType "$input" 2>/dev/null || true)
    out_type=$(awk -F': ' '/^\[File\] +FileType +:/ {print $2; exit}' <<<"$dump")
    in_type=${in_type#Extended } # "Extended WEBP" (VP8X) is still WebP
    out_type=${out_type#Extended }

    # [type] same format, sensible extension
    e=$(ext_lc "$out")
    case $out_type in
    JPEG) okext='jpg jpeg' ;; PNG) okext='png' ;; TIFF) okext='tif tiff' ;;
    WEBP) okext='webp' ;; GIF) okext='gif' ;; HEIC) okext='heic heif hif' ;;
    AVIF) okext='avif' ;; *) okext='' ;;
    esac
    if [[ -z $out_type ]]; then
        fail type "$label" "exiftool cannot tell the output's file type"
    elif [[ $out_type != "$in_type" ]]; then
        fail type "$label" "output is $out_type, input was $in_type"
    elif [[ " $okext " != *" $e "* ]]; then
        fail type "$label" "extension .$e does not match $out_type"
    else
        pass
    fi

    # [tags] allow-list; [gps]/[serial]/[dates] reported on their own
    bad_tags=()
    gps=()
    serial=()
    dates=()
    warnings=()
    while IFS= read -r line; do
        [[ $line =~ ^\[([^]]+)\][[:space:]]+([^[:space:]]+)[[:space:]]*:[[:space:]]?(.*)$ ]] || continue
        g=${BASH_REMATCH[1]}
        t=${BASH_REMATCH[2]}
        v=${BASH_REMATCH[3]}
        if [[ $g == ExifTool && ($t == Warning || $t == Error) ]]; then
            warnings+=("$t: $v")
            continue
        fi
        short=$v
        [[ ${#short} -le 60 ]] || short="${short:0:57}..."
        if [[ $g != System && $g != ICC* ]]; then
            [[ $g == GPS || $t == GPS* ]] && gps+=("$g:$t=$short")
            [[ ${t,,} == *serial* ]] && serial+=("$g:$t=$short")
            [[ $t == *Date* || $t == DateTime* || $t == *TimeCreated* ]] && dates+=("$g:$t=$short")
        fi
        group_allowed "$g" && continue
        [[ -n ${ALLOW_TAG[$g:$t]+x} ]] && continue
        [[ $out_type == TIFF && $g =~ ^IFD[0-9]+$ && -n ${ALLOW_TIFF[$t]+x} ]] && continue
        bad_tags+=("[$g] $t = $short")
    done <<<"$dump"
    if [[ ${#bad_tags[@]} -eq 0 ]]; then pass; else
        fail tags "$label" "${#bad_tags[@]} tag(s) outside the allow-list: $(printf '%s; ' "${bad_tags[@]}")"
    fi
    if [[ ${#gps[@]} -eq 0 ]]; then pass; else fail gps "$label" "GPS remains: $(printf '%s; ' "${gps[@]}")"; fi
    if [[ ${#serial[@]} -eq 0 ]]; then pass; else fail serial "$label" "serial number remains: $(printf '%s; ' "${serial[@]}")"; fi
    if [[ ${#dates[@]} -eq 0 ]]; then pass; else fail dates "$label" "date tag remains: $(printf '%s; ' "${dates[@]}")"; fi

    # [trailer] exiftool trailer warnings / bytes after the end of the image
    trailer=""
    other_warn=()
    for w in "${warnings[@]+"${warnings[@]}"}"; do
        if [[ ${w,,} =~ trailer|after\ (jpeg\ )?eoi|after\ iend|after\ end ]]; then
            trailer+="exiftool $w; "
        elif [[ $w != "Warning: [minor]"* ]]; then
            other_warn+=("$w")
        else
            note warnings "$label" "$w"
        fi
    done
    size=$(stat -c %s "$out")
    case $out_type in
    JPEG) [[ $(tail -c 2 "$out" | od -An -tx1 | tr -d ' \n') == ffd9 ]] ||
        trailer+="file does not end with the EOI marker; " ;;
    PNG) [[ $(tail -c 8 "$out" | od -An -tx1 | tr -d ' \n') == 49454e44ae426082 ]] ||
        trailer+="file does not end with the IEND chunk; " ;;
    GIF) [[ $(tail -c 1 "$out" | od -An -tx1 | tr -d ' \n') == 3b ]] ||
        trailer+="file does not end with the GIF trailer byte; " ;;
    WEBP)
        riff=$(head -c 8 "$out" | tail -c 4 | od -An -tu4 --endian=little | tr -d ' \n')
        [[ $((riff + 8 + riff % 2)) -eq $size ]] || trailer+="RIFF size $riff + 8 != file size $size; " ;;
    esac
    if [[ -z $trailer ]]; then pass; else fail trailer "$label" "$trailer"; fi
    if [[ ${#other_warn[@]} -eq 0 ]]; then pass; else
        fail warnings "$label" "exiftool warns: $(printf '%s; ' "${other_warn[@]}")"
    fi

    # [orientation] JPEG/WebP keep the original's Orientation (absent == 1)
    if [[ $out_type == JPEG || $out_type == WEBP ]]; then
        oi=$(orientation_of "$input")
        oo=$(awk '/^\[IFD0\] +Orientation +:/ {print $NF; exit}' <<<"$dump")
        if [[ ${oi:-1} == "${oo:-1}" ]]; then
            pass
            [[ $oi == "$oo" ]] || ORIENT1_DROPPED=$((ORIENT1_DROPPED + 1))
        else
            fail orientation "$label" "original Orientation ${oi:-absent}, output ${oo:-absent}"
        fi
    fi

    # [pixels] JPEG: lossless path, identical decoded pixels
    if [[ $out_type == JPEG ]]; then
        a="$WORK/in.ppm"
        b="$WORK/out.ppm"
        wa=$(djpeg -ppm "$input" 2>&1 >"$a") || true
        wb=$(djpeg -ppm -outfile "$b" "$out" 2>&1) || true
        if [[ ! -s $b ]]; then
            fail pixels "$label" "djpeg cannot decode the output: ${wb:-no output}"
        elif ! cmp -s "$a" "$b"; then
            fail pixels "$label" "decoded pixels differ from the input's (djpeg -ppm)${wb:+; djpeg: $wb}"
        elif [[ -n $wb && $wb != "$wa" ]]; then
            fail pixels "$label" "same pixels, but djpeg warns on the output only: $wb"
        else
            pass
        fi
        rm -f "$a" "$b"
    fi

    # [pixels] HEIF/AVIF: lossless path, libheif decodes both to the same pixels
    if [[ $out_type == HEIC || $out_type == AVIF ]] && command -v heif-convert >/dev/null; then
        a="$WORK/in.png"
        b="$WORK/out.png"
        heif-convert "$input" "$a" >/dev/null 2>&1 || true
        # several top-level images: in-1.png is the first (the primary in phone files)
        [[ -s $a ]] || { [[ -s $WORK/in-1.png ]] && mv "$WORK/in-1.png" "$a" && rm -f "$WORK"/in-*.png; }
        heif-convert "$out" "$b" >/dev/null 2>&1 || true
        if [[ ! -s $b ]]; then
            fail pixels "$label" "heif-convert cannot decode the output"
        elif [[ -s $a ]] && [[ $(compare -metric AE "$a" "$b" null: 2>&1 || true) != 0 ]]; then
            fail pixels "$label" "decoded pixels differ from the input's (heif-convert)"
        else
            pass
        fi
        # heif-info: the primary picture only, no thumbnail, depth or metadata
        info=$(heif-info "$out" 2>/dev/null || true)
        if [[ $(grep -c '^image:' <<<"$info") -ne 1 || $info == *thumbnail:* ||
            $(sed -n '/^metadata:/,$p' <<<"$info" | sed 1d | tr -d ' \n') != none ]]; then
            fail heif "$label" "heif-info shows more than the primary picture: $(tr '\n' ' ' <<<"$info")"
        else
            pass
        fi
        rm -f "$a" "$b"
    fi

    # [tiff-structure] re-encoded TIFF: same size, extra channels described
    if [[ $out_type == TIFF ]]; then
        in_dump=$(exiftool -a -G1 -s -n -IFD0:all "$input" 2>/dev/null || true)
        problems=""
        # orientation 5-8 applied to the pixels (tag gone) swaps width and height
        w=ImageWidth
        h=ImageHeight
        oi=$(tv "$in_dump" Orientation)
        oo=$(tv "$dump" Orientation)
        if [[ ${oi:-1} =~ ^[5-8]$ && ${oo:-1} == 1 ]]; then w=ImageHeight h=ImageWidth; fi
        [[ $(tv "$dump" ImageWidth) == "$(tv "$in_dump" $w)" && $(tv "$dump" ImageHeight) == "$(tv "$in_dump" $h)" ]] ||
            problems+="size $(tv "$in_dump" ImageWidth)x$(tv "$in_dump" ImageHeight) (Orientation ${oi:-none}) -> $(tv "$dump" ImageWidth)x$(tv "$dump" ImageHeight) (Orientation ${oo:-none}); "
        spp=$(tv "$dump" SamplesPerPixel)
        pi=$(tv "$dump" PhotometricInterpretation)
        case $pi in 0 | 1 | 3) base=1 ;; 2 | 6 | 8) base=3 ;; 5) base=4 ;; *) base=${spp:-1} ;; esac
        extra=$(tv "$dump" ExtraSamples)
        n_extra=0
        [[ -z $extra ]] || n_extra=$(wc -w <<<"$extra")
        if [[ $((${spp:-1} - base)) -ne $n_extra ]]; then
            problems+="SamplesPerPixel ${spp:-?} with PhotometricInterpretation ${pi:-?} needs $((${spp:-1} - base)) ExtraSamples value(s), has ${extra:-none}"
            in_extra=$(tv "$in_dump" ExtraSamples)
            [[ -z $in_extra ]] || problems+=" (input: ExtraSamples $in_extra)"
            problems+="; "
        elif [[ -n $extra && $extra != "$(tv "$in_dump" ExtraSamples)" ]]; then
            problems+="ExtraSamples $(tv "$in_dump" ExtraSamples) -> $extra (alpha meaning changed); "
        fi
        if [[ -z $problems ]]; then pass; else fail tiff-structure "$label" "$problems"; fi
        in_res="$(tv "$in_dump" XResolution)x$(tv "$in_dump" YResolution)/$(tv "$in_dump" ResolutionUnit)"
        out_res="$(tv "$dump" XResolution)x$(tv "$dump" YResolution)/$(tv "$dump" ResolutionUnit)"
        [[ $in_res == x/ || $in_res == "$out_res" ]] ||
            note tiff-structure "$label" "resolution $in_res -> $out_res (X x Y / unit)"
        tiff_pages "$input" "$out" "$label"
    fi

    # [names] no input stem or folder name in the output path
    orel=${out#"$OUT/"}
    [[ ${orel##*/} == *.* ]] && orel=${orel%.*}
    orel=${orel,,}
    leaks=""
    for part in "${!NAMEPARTS[@]}"; do
        [[ $orel == *"$part"* ]] && leaks+="'$part' (from ${NAMEPARTS[$part]}); "
    done
    if [[ -z $leaks ]]; then pass; else fail names "$label" "output name contains input name parts: $leaks"; fi
done

[[ $ORIENT1_DROPPED -eq 0 ]] ||
    note orientation "$OUT" "$ORIENT1_DROPPED JPEG/WebP outputs dropped an Orientation of 1 (same meaning as absent)"

# ------------------------------------------------------ photodeid check --
if [[ $n_cleaned -gt 0 ]]; then
    crc=0
    "$PHOTODEID" check -q "$OUT" >"$WORK/check.out" 2>&1 || crc=$?
    if [[ $crc -eq 0 ]]; then pass; else
        fail check "$OUT" "photodeid check exited $crc:"
        sed 's/^/    /' "$WORK/check.out" | head -n 40
    fi
fi

# ------------------------------------ check --thorough, no false positives --
# Each JPEG output as it is and made progressive (jpegtran): decoding every
# scan to its end finds nothing hidden and leaves no file undecoded.
if [[ $n_cleaned -gt 0 ]] && command -v jpegtran >/dev/null 2>&1; then
    mkdir -p "$WORK/prog"
    while IFS= read -r -d '' f; do
        jpegtran -copy none -progressive -outfile "$WORK/prog/$(basename "$f")" "$f" 2>/dev/null || true
    done < <(find "$OUT" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) -print0)
    "$PHOTODEID" check --thorough "$OUT" "$WORK/prog" >"$WORK/thorough.out" 2>&1 || true
    if grep -qE 'compressed data|not decoded' "$WORK/thorough.out"; then
        fail thorough "$WORK/prog" "check --thorough flags clean JPEGs:"
        grep -B2 -E 'compressed data|not decoded' "$WORK/thorough.out" | head -n 40 | sed 's/^/    /'
    else pass; fi
fi

# ----------------------------------------------------- corpus unchanged --
corpus_hash >"$WORK/corpus.after"
if cmp -s "$WORK/corpus.before" "$WORK/corpus.after"; then pass; else
    fail unchanged "$CORPUS_ABS" "corpus changed during the run:"
    diff "$WORK/corpus.before" "$WORK/corpus.after" | head -n 20 | sed 's/^/    /'
fi

echo "conformance: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
