//! Issue 9, "every kept byte accounted for": canaries planted in every
//! place a kept structure could carry them (here: the ICC profile's text
//! tags, device fields, private tags, gaps, trailing bytes and header date,
//! a stray ICC_PROFILE chunk, a PNG iCCP name) are gone on every path, the
//! outputs decode with independent readers without warnings, the colour
//! renders identically, and `check` names the finding in the input only.

use crate::util::*;
use photodeid::container::{jpeg, Limits};
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &str = "ICC-CANARY-7731";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether an external tool runs; on CI its absence is a failure.
fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool).arg(arg).output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} missing on CI");
        eprintln!("{tool} not installed: cross-check skipped locally");
    }
    ok
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The fixture's (sRGB) profile.
fn base_profile() -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join("dirty/jpeg_icc.jpg")).unwrap();
    jpeg::parse(&bytes, &Limits::default())
        .unwrap()
        .icc_profile()
        .unwrap()
}

/// `p` with its colorants replaced (e.g. by Display P3's).
fn with_colorants(mut p: Vec<u8>, cols: [[f64; 3]; 3]) -> Vec<u8> {
    for i in 0..be32(&p, 128) {
        let e = 132 + 12 * i;
        let k = match &p[e..e + 4] {
            b"rXYZ" => 0,
            b"gXYZ" => 1,
            b"bXYZ" => 2,
            _ => continue,
        };
        let off = be32(&p, e + 4);
        for (j, v) in cols[k].iter().enumerate() {
            let fixed = ((v * 65536.0).round() as i32).to_be_bytes();
            p[off + 8 + 4 * j..off + 12 + 4 * j].copy_from_slice(&fixed);
        }
    }
    p
}

/// `p` with a canary in its desc, a device tag, a private tag, the CMM and
/// reserved header fields, a gap before the tag data and, when `trailing`,
/// after its end (libpng refuses that one in iCCP).
fn dirty_profile(p: &[u8], trailing: bool) -> Vec<u8> {
    let text = |s: &str| [b"text\0\0\0\0".as_slice(), s.as_bytes(), b"\0"].concat();
    let n = be32(p, 128);
    let gap = [CANARY.as_bytes(), b"\0"].concat(); // libpng wants 4-byte alignment
    let data_at = 132 + 12 * (n + 2) + gap.len();
    let shift = data_at - (132 + 12 * n);
    let mut data = p[132 + 12 * n..be32(p, 0)].to_vec();
    data.resize(data.len().next_multiple_of(4), 0);
    let mut add = |body: Vec<u8>| {
        let at = data_at + data.len();
        data.extend_from_slice(&body);
        data.resize(data.len().next_multiple_of(4), 0);
        [(at as u32).to_be_bytes(), (body.len() as u32).to_be_bytes()].concat()
    };
    let mut out = p[..128].to_vec();
    out.extend_from_slice(&((n + 2) as u32).to_be_bytes());
    for i in 0..n {
        let e = 132 + 12 * i;
        out.extend_from_slice(&p[e..e + 4]);
        if &p[e..e + 4] == b"desc" {
            out.extend_from_slice(&add(text(&format!("{CANARY} Dr Smith"))));
        } else {
            out.extend_from_slice(&((be32(p, e + 4) + shift) as u32).to_be_bytes());
            out.extend_from_slice(&p[e + 8..e + 12]);
        }
    }
    out.extend_from_slice(b"dmdd");
    out.extend_from_slice(&add(text(&format!("{CANARY} model"))));
    out.extend_from_slice(b"Priv");
    out.extend_from_slice(&add(CANARY.as_bytes().to_vec()));
    out.extend_from_slice(&gap);
    out.extend_from_slice(&data);
    out[4..8].copy_from_slice(b"CNRY");
    out[100..100 + CANARY.len()].copy_from_slice(CANARY.as_bytes());
    let size = out.len() as u32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    if trailing {
        out.extend_from_slice(CANARY.as_bytes());
    }
    out
}

/// The fixture JPEG with `profile` as its ICC segments plus a stray
/// ICC_PROFILE chunk outside the sequence.
fn jpeg_with(profile: &[u8]) -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join("dirty/jpeg_icc.jpg")).unwrap();
    let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&photodeid::icc::app2_segments(profile));
    let stray = [b"ICC_PROFILE\0\x07\x09".as_slice(), CANARY.as_bytes()].concat();
    out.extend_from_slice(&[0xFF, 0xE2]);
    out.extend_from_slice(&((stray.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&stray);
    for seg in &j.segments[1..] {
        let icc = seg.marker == 0xE2 && seg.payload.starts_with(b"ICC_PROFILE\0");
        if !icc {
            out.extend_from_slice(seg.raw);
        }
    }
    out
}

fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&[kind.as_slice(), data].concat());
    out.extend_from_slice(&crc.to_be_bytes());
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn inflate(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The fixture's pixels as a PNG whose iCCP chunk is named `name`.
fn png_with(profile: &[u8], name: &str) -> Vec<u8> {
    let img = decode(&fixtures().join("dirty/jpeg_icc.jpg")).to_rgb8();
    let mut plain = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut plain),
        image::ImageFormat::Png,
    )
    .unwrap();
    let mut out = plain[..33].to_vec(); // signature + IHDR
    let data = [name.as_bytes(), b"\0\0", &zlib(profile)].concat();
    write_chunk(&mut out, b"iCCP", &data);
    out.extend_from_slice(&plain[33..]);
    out
}

/// Every iCCP profile in a PNG, inflated.
fn png_profiles(b: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut pos = 8;
    while pos + 8 <= b.len() {
        let len = be32(b, pos);
        if &b[pos + 4..pos + 8] == b"iCCP" {
            let d = &b[pos + 8..pos + 8 + len];
            let nul = d.iter().position(|&c| c == 0).unwrap();
            v.push(inflate(&d[nul + 2..]));
        }
        pos += 12 + len;
    }
    v
}

/// Cleans `input` with `args` and returns the one output.
fn clean(input: &Path, args: &[&str]) -> PathBuf {
    let out = input.parent().unwrap().join(format!("out{}", args.len()));
    let mut all = vec!["clean", "-q", s(input), "-o", s(&out)];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let f = files(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    f[0].clone()
}

/// ImageMagick's colour-managed conversion to sRGB, as raw RGB pixels.
fn to_srgb(path: &Path, dir: &Path) -> Vec<u8> {
    let target = dir.join("target.icc");
    if !target.exists() {
        std::fs::write(&target, base_profile()).unwrap();
    }
    let o = Command::new("convert")
        .args(["-regard-warnings", s(path), "-profile", s(&target), "rgb:-"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
    o.stdout
}

fn assert_decodes_cleanly(path: &Path) {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let jpeg = ext == "jpg";
    if jpeg && have("djpeg", "-version") {
        let o = Command::new("djpeg")
            .args(["-outfile", "/dev/null", s(path)])
            .output()
            .unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "djpeg: {}",
            stderr(&o)
        );
    }
    if ext == "png" && have("pngcheck", "-h") {
        let o = Command::new("pngcheck").arg(s(path)).output().unwrap();
        assert!(o.status.success(), "pngcheck: {}", stdout(&o));
    }
    if have("convert", "-version") {
        let o = Command::new("convert")
            .args(["-regard-warnings", s(path), "null:"])
            .output()
            .unwrap();
        assert!(o.status.success(), "ImageMagick: {}", stderr(&o));
    }
}

fn assert_check(path: &Path, clean: bool) {
    let o = run(&["check", s(path)]);
    let out = stdout(&o);
    if clean {
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("colour profile (kept"), "{out}");
    } else {
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains("colour profile text/date"), "{out}");
        assert!(out.contains(CANARY), "the finding names the text: {out}");
    }
}

const P3: [[f64; 3]; 3] = [
    [0.5151, 0.2412, -0.0011],
    [0.2920, 0.6922, 0.0419],
    [0.1571, 0.0666, 0.7841],
];

#[test]
fn icc_canaries_in_jpeg_are_gone_on_every_path() {
    let d = tempfile::tempdir().unwrap();
    for (space, base) in [
        ("sRGB IEC61966-2.1", base_profile()),
        ("Display P3", with_colorants(base_profile(), P3)),
    ] {
        let input = d.path().join("IMG_1.jpg");
        std::fs::write(&input, jpeg_with(&dirty_profile(&base, true))).unwrap();
        assert!(contains(&std::fs::read(&input).unwrap(), CANARY.as_bytes()));
        assert_check(&input, false);
        let paths: [&[&str]; 3] = [
            &[],
            &["--region", "8,8,16,16"],
            &["--region", "8,8,16,16", "--quality", "90"],
        ];
        for args in paths {
            let out = clean(&input, args);
            let bytes = std::fs::read(&out).unwrap();
            assert!(!contains(&bytes, CANARY.as_bytes()), "{args:?}");
            assert!(!contains(&bytes, b"CNRY"), "{args:?}");
            let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
            let p = j.icc_profile().expect("profile kept");
            assert!(
                contains(
                    &p,
                    &space
                        .encode_utf16()
                        .flat_map(u16::to_be_bytes)
                        .collect::<Vec<_>>()
                ),
                "{space} {args:?}"
            );
            assert!(p[24..36].iter().all(|&b| b == 0), "date zeroed");
            assert_decodes_cleanly(&out);
            assert_check(&out, true);
            if args.is_empty() {
                assert_eq!(decode(&input).to_rgb8(), decode(&out).to_rgb8());
                if have("convert", "-version") {
                    assert_eq!(
                        to_srgb(&input, d.path()),
                        to_srgb(&out, d.path()),
                        "{space}"
                    );
                }
            }
            std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
        }
    }
}

#[test]
fn png_iccp_name_and_profile_canaries_are_gone() {
    let d = tempfile::tempdir().unwrap();
    let mut bases = vec![("sRGB IEC61966-2.1", base_profile())];
    let a98 = Path::new("/usr/share/color/icc/ghostscript/a98.icc");
    match std::fs::read(a98) {
        Ok(p) => bases.push(("Adobe RGB (1998)", p)),
        Err(_) => eprintln!("{} missing: Adobe RGB case skipped", a98.display()),
    }
    for (space, base) in bases {
        let input = d.path().join("scan.png");
        let name = format!("Dr {CANARY}");
        std::fs::write(&input, png_with(&dirty_profile(&base, false), &name)).unwrap();
        assert_check(&input, false);
        for args in [&[][..], &["--region", "8,8,16,16"][..]] {
            let out = clean(&input, args);
            let bytes = std::fs::read(&out).unwrap();
            assert!(!contains(&bytes, CANARY.as_bytes()), "{args:?}");
            let profiles = png_profiles(&bytes);
            assert_eq!(profiles.len(), 1, "{args:?}");
            assert!(!contains(&profiles[0], CANARY.as_bytes()), "{args:?}");
            assert!(!contains(&profiles[0], b"CNRY"), "{args:?}");
            let desc = |p: &[u8]| {
                let utf16: Vec<u8> = space.encode_utf16().flat_map(u16::to_be_bytes).collect();
                contains(p, space.as_bytes()) || contains(p, &utf16)
            };
            assert!(desc(&profiles[0]), "{space}");
            assert_decodes_cleanly(&out);
            assert_check(&out, true);
            if args.is_empty() {
                assert!(contains(&bytes, b"iCCPICC profile\0"), "neutral keyword");
                assert_eq!(decode(&input).to_rgb8(), decode(&out).to_rgb8());
                if have("convert", "-version") {
                    assert_eq!(
                        to_srgb(&input, d.path()),
                        to_srgb(&out, d.path()),
                        "{space}"
                    );
                }
            }
            std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
        }
    }
}

/// Chunks of a PNG: (type, data).
fn png_chunks(b: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut v = Vec::new();
    let mut pos = 8;
    while pos + 12 <= b.len() {
        let len = be32(b, pos);
        let kind: [u8; 4] = b[pos + 4..pos + 8].try_into().unwrap();
        v.push((kind, b[pos + 8..pos + 8 + len].to_vec()));
        pos += 12 + len;
    }
    v
}

fn png_from(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (k, d) in chunks {
        write_chunk(&mut out, k, d);
    }
    out
}

#[test]
fn png_chunk_canaries_are_gone_and_pixels_stay() {
    let d = tempfile::tempdir().unwrap();
    let img = decode(&fixtures().join("dirty/jpeg_icc.jpg")).to_rgb8();
    let mut plain = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut plain),
        image::ImageFormat::Png,
    )
    .unwrap();
    let chunks = png_chunks(&plain);
    let c = CANARY.as_bytes();
    let raw: Vec<u8> = chunks
        .iter()
        .filter(|(k, _)| k == b"IDAT")
        .flat_map(|(_, d)| inflate(d))
        .collect();
    // Three ways to hide bytes in the image data: after the zlib stream,
    // inside it past what the image needs, and in an IDAT after the end.
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("after the stream", [zlib(&raw).as_slice(), c].concat()),
        ("past the image", zlib(&[raw.as_slice(), c].concat())),
    ];
    for (what, idat) in variants {
        let mut v: Vec<([u8; 4], Vec<u8>)> = vec![chunks[0].clone()];
        v.push((*b"bKGD", [&[0, 1, 0, 2, 0, 3][..], c].concat())); // wrong length
        v.push((
            *b"pHYs",
            [&[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1][..], c].concat(),
        ));
        v.push((*b"gAMA", vec![0, 0, 0xB1, 0x8F])); // well formed: kept
        v.push((*b"fcTL", [&[0u8; 26][..4], c, &[0u8; 7]].concat())); // not an APNG
        v.push((*b"IDAT", idat.clone()));
        v.push((*b"fdAT", [&[0, 0, 0, 1][..], c].concat()));
        v.push((*b"IEND", Vec::new()));
        let input = d.path().join("photo.png");
        std::fs::write(&input, png_from(&v)).unwrap();
        let o = run(&["check", s(&input)]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
        for name in ["bKGD", "pHYs", "fcTL", "fdAT", "zlib stream"] {
            assert!(
                stdout(&o).contains(name),
                "{what}: {name} in {}",
                stdout(&o)
            );
        }
        let out = clean(&input, &[]);
        let bytes = std::fs::read(&out).unwrap();
        assert!(!contains(&bytes, c), "{what}");
        let kinds: Vec<[u8; 4]> = png_chunks(&bytes).iter().map(|c| c.0).collect();
        assert_eq!(
            kinds,
            vec![*b"IHDR", *b"gAMA", *b"IDAT", *b"IEND"],
            "{what}"
        );
        let idat: Vec<u8> = png_chunks(&bytes)
            .iter()
            .filter(|(k, _)| k == b"IDAT")
            .flat_map(|(_, d)| inflate(d))
            .collect();
        assert_eq!(idat, raw, "{what}: the image data is exactly what it needs");
        assert!(!contains(&idat, c), "{what}");
        assert_decodes_cleanly(&out);
        let o = run(&["check", s(&out)]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stdout(&o));
        assert_eq!(decode(&out).to_rgb8(), img, "{what}");
        // The rewrite is a fixed point.
        let again = clean(&out, &[]);
        assert_eq!(std::fs::read(&again).unwrap(), bytes, "{what}");
        std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
    }
}

#[test]
fn gif_icc_extension_is_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let gif = std::fs::read(fixtures().join("dirty/gif_comment.gif")).unwrap();
    let profile = dirty_profile(&base_profile(), true);
    // The application extension goes right after the header, screen
    // descriptor and global colour table.
    let flags = gif[10];
    let gct = if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    };
    let at = 13 + gct;
    let mut ext = vec![0x21, 0xFF, 0x0B];
    ext.extend_from_slice(b"ICCRGBG1012");
    for c in profile.chunks(255) {
        ext.push(c.len() as u8);
        ext.extend_from_slice(c);
    }
    ext.push(0);
    let input = d.path().join("anim.gif");
    std::fs::write(&input, [&gif[..at], &ext, &gif[at..]].concat()).unwrap();
    let o = run(&["check", s(&input)]);
    assert!(
        stdout(&o).contains("colour profile text/date"),
        "{}",
        stdout(&o)
    );
    let out = clean(&input, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, CANARY.as_bytes()));
    assert!(contains(&bytes, b"ICCRGBG1012"), "the profile is kept");
    assert_decodes_cleanly(&out);
    let o = run(&["check", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(decode(&out).to_rgba8(), decode(&input).to_rgba8());
}

#[test]
fn webp_iccp_is_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let webp = std::fs::read(fixtures().join("dirty/webp_meta.webp")).unwrap();
    let mut profile = dirty_profile(&base_profile(), true);
    if profile.len() % 2 == 1 {
        profile.push(0); // RIFF padding, counted in the chunk here
    }
    let mut iccp = b"ICCP".to_vec();
    iccp.extend_from_slice(&(profile.len() as u32).to_le_bytes());
    iccp.extend_from_slice(&profile);
    // After RIFF header (12) and VP8X (8 + 10), with the ICC flag set.
    let mut v = [&webp[..30], &iccp, &webp[30..]].concat();
    v[20] |= 0x20;
    let riff = (v.len() - 8) as u32;
    v[4..8].copy_from_slice(&riff.to_le_bytes());
    let input = d.path().join("photo.webp");
    std::fs::write(&input, &v).unwrap();
    assert_check(&input, false);
    let out = clean(&input, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, CANARY.as_bytes()));
    assert!(contains(&bytes, b"ICCP"), "the profile is kept");
    if have("webpinfo", "-version") {
        let o = Command::new("webpinfo").arg(s(&out)).output().unwrap();
        assert!(stdout(&o).contains("No error detected"), "{}", stdout(&o));
        assert!(stdout(&o).contains("ICCP: 1"), "{}", stdout(&o));
    }
    assert_check(&out, true);
    assert_eq!(decode(&out).to_rgb8(), decode(&input).to_rgb8());
}

/// A GIF frame: descriptor, LZW data (plus `tail` after the end code).
fn gif_frame(x: u16, y: u16, w: u16, h: u16, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0x2C];
    for n in [x, y, w, h] {
        v.extend_from_slice(&n.to_le_bytes());
    }
    v.push(0);
    v.push(2);
    let idx: Vec<u8> = (0..w as usize * h as usize)
        .map(|i| (i % 4) as u8)
        .collect();
    let data = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 2)
        .encode(&idx)
        .unwrap();
    let data = [data.as_slice(), tail].concat();
    for c in data.chunks(255) {
        v.push(c.len() as u8);
        v.extend_from_slice(c);
    }
    v.push(0);
    v
}

#[test]
fn gif_block_canaries_are_gone() {
    let d = tempfile::tempdir().unwrap();
    let c = CANARY.as_bytes();
    let build = |c: &[u8], hostile: bool| {
        let sub = |b: &[u8]| [&[b.len() as u8][..], b].concat();
        let mut v = b"GIF89a\x08\x00\x08\x00\x81\x00\x00".to_vec();
        v.extend_from_slice(&[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
        v.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00");
        if hostile {
            v.extend_from_slice(&sub(c)); // extra sub-block
        }
        v.push(0);
        v.extend_from_slice(b"\x21\xF9\x04\x04\x0A\x00\x00");
        if hostile {
            v.extend_from_slice(&sub(c));
        }
        v.push(0);
        v.extend_from_slice(&gif_frame(0, 0, 8, 8, c)); // bytes after the end code
        v.extend_from_slice(b"\x21\xF9\x04\x04\x0A\x00\x00\x00");
        v.extend_from_slice(&gif_frame(40, 40, 2, 2, c)); // wholly outside
        v.extend_from_slice(b"\x21\xF9\x04\x04\x0A\x00\x00\x00");
        v.extend_from_slice(&gif_frame(6, 6, 4, 4, &[])); // partly outside
        v.push(0x3B);
        v
    };
    let v = build(c, true);
    let reference = d.path().join("reference.gif");
    std::fs::write(&reference, build(&[], false)).unwrap();
    let input = d.path().join("anim.gif");
    std::fs::write(&input, &v).unwrap();
    let o = run(&["check", s(&input)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    for what in [
        "loop count",
        "graphic control",
        "LZW end code",
        "outside the logical screen",
        "partly outside",
    ] {
        assert!(stdout(&o).contains(what), "{what} in {}", stdout(&o));
    }
    let out = clean(&input, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, c));
    assert!(contains(&bytes, b"NETSCAPE2.0\x03\x01\x00\x00\x00"));
    assert_decodes_cleanly(&out);
    let o = run(&["check", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // What a viewer shows: every frame composited on the screen.
    let frames = |p: &Path| -> Vec<image::RgbaImage> {
        use image::AnimationDecoder;
        let f = std::fs::File::open(p).unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(f)).unwrap();
        dec.into_frames()
            .map(|f| f.unwrap().into_buffer())
            .collect()
    };
    let (a, b) = (frames(&reference), frames(&out));
    assert_eq!(a.len(), 3);
    assert_eq!(b.len(), 2, "the invisible frame is gone");
    assert_eq!(a[0], b[0]);
    assert_eq!(a[2], b[1], "the cropped frame shows the same pixels");
    let again = clean(&out, &[]);
    assert_eq!(std::fs::read(&again).unwrap(), bytes, "a fixed point");
}

mod grammar {
    //! Property tests over files built from a grammar of PNG chunks and
    //! GIF blocks, valid and hostile: the rewrite is idempotent, its output
    //! re-parses, and the audit calls it clean.

    use super::*;
    use photodeid::pipeline::inspect;
    use proptest::prelude::*;

    fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
        let p = inspect(bytes, None, &Limits::default()).ok()?;
        p.rewrite(&Default::default())
    }

    fn check_fixed_point(bytes: &[u8]) -> Result<(), TestCaseError> {
        let Some(once) = rewrite(bytes) else {
            return Ok(()); // refused: nothing published
        };
        let parsed = inspect(&once, None, &Limits::default());
        prop_assert!(parsed.is_ok(), "output does not parse: {:?}", parsed.err());
        let parsed = parsed.unwrap();
        prop_assert!(parsed.inventory.is_clean(), "{:?}", parsed.inventory);
        let twice = parsed.rewrite(&Default::default()).unwrap();
        prop_assert_eq!(twice, once);
        Ok(())
    }

    /// One PNG chunk of an 4x3 8-bit gray image, valid or hostile.
    fn png_chunk() -> impl Strategy<Value = ([u8; 4], Vec<u8>)> {
        let raw = vec![0u8; 3 * (1 + 4)];
        let z = zlib(&raw);
        prop_oneof![
            Just((*b"gAMA", vec![0, 0, 0xB1, 0x8F])),
            Just((*b"gAMA", vec![0, 0, 0xB1, 0x8F, 9])),
            Just((*b"pHYs", vec![0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1])),
            Just((*b"pHYs", vec![0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 7])),
            Just((*b"sRGB", vec![0])),
            Just((*b"sRGB", vec![9])),
            Just((*b"bKGD", vec![0, 7])),
            Just((*b"bKGD", vec![0, 7, 1, 2, 3, 4])),
            Just((*b"tRNS", vec![0, 1])),
            Just((*b"sBIT", vec![8])),
            Just((*b"cHRM", vec![1; 32])),
            Just((*b"tEXt", b"Author\0Jane".to_vec())),
            Just((*b"tIME", vec![7, 0xE5, 3, 4, 9, 10, 11])),
            Just((*b"prVt", b"secret".to_vec())),
            Just((*b"acTL", vec![0, 0, 0, 1, 0, 0, 0, 0])),
            Just((*b"fcTL", vec![0; 26])),
            Just((*b"fdAT", vec![0, 0, 0, 1, 9, 9])),
            Just((
                *b"iCCP",
                [
                    b"Dr X\0\0".as_slice(),
                    &zlib(&dirty_profile(&base_profile(), false))
                ]
                .concat()
            )),
            Just((*b"iCCP", b"x\0\0garbage".to_vec())),
            Just((*b"IDAT", z.clone())),
            Just((*b"IDAT", [z.as_slice(), b"tail"].concat())),
            Just((*b"IDAT", zlib(&[raw.as_slice(), b"more pixels"].concat()))),
            Just((*b"IDAT", z[..4].to_vec())),
        ]
    }

    fn png(chunks: Vec<([u8; 4], Vec<u8>)>, trailing: Vec<u8>) -> Vec<u8> {
        let mut v = vec![(*b"IHDR", vec![0, 0, 0, 4, 0, 0, 0, 3, 8, 0, 0, 0, 0])];
        v.extend(chunks);
        v.push((*b"IEND", Vec::new()));
        let mut out = png_from(&v);
        out.extend_from_slice(&trailing);
        out
    }

    /// One GIF block of an 8x8 screen with a 4-colour table.
    fn gif_block() -> impl Strategy<Value = Vec<u8>> {
        let frame = |x, y, w, h, tail: &'static [u8]| gif_frame(x, y, w, h, tail);
        let mut icc = vec![0x21, 0xFF, 0x0B];
        icc.extend_from_slice(b"ICCRGBG1012");
        for c in dirty_profile(&base_profile(), true).chunks(255) {
            icc.push(c.len() as u8);
            icc.extend_from_slice(c);
        }
        icc.push(0);
        prop_oneof![
            Just(b"\x21\xF9\x04\x04\x0A\x00\x00\x00".to_vec()),
            Just(b"\x21\xF9\x04\xE4\x0A\x00\x00\x03abc\x00".to_vec()),
            Just(b"\x21\xF9\x02\x04\x0A\x00".to_vec()),
            Just(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00".to_vec()),
            Just(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x02ab\x00".to_vec()),
            Just(b"\x21\xFF\x0BNETSCAPE2.0\x02\x01\x00\x00".to_vec()),
            Just(b"\x21\xFE\x05MRN-1\x00".to_vec()),
            Just(b"\x21\xFF\x0BXMP DataXMP\x03abc\x00".to_vec()),
            Just(b"\x21\x01\x0C\0\0\0\0\x08\0\x08\0\x08\x08\x01\x00\x03Jan\x00".to_vec()),
            Just(icc),
            Just(frame(0, 0, 8, 8, b"")),
            Just(frame(0, 0, 8, 8, b"tail")),
            Just(frame(2, 2, 3, 3, b"")),
            Just(frame(6, 5, 4, 4, b"")),
            Just(frame(9, 0, 2, 2, b"x")),
            Just(frame(0, 0, 0, 3, b"")),
        ]
    }

    fn gif(blocks: Vec<Vec<u8>>, trailing: Vec<u8>) -> Vec<u8> {
        let mut v = b"GIF89a\x08\x00\x08\x00\x81\x00\x00".to_vec();
        v.extend_from_slice(&[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
        for b in blocks {
            v.extend_from_slice(&b);
        }
        v.push(0x3B);
        v.extend_from_slice(&trailing);
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn png_rewrite_is_a_clean_fixed_point(
            chunks in proptest::collection::vec(png_chunk(), 0..8),
            trailing in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            check_fixed_point(&png(chunks, trailing))?;
        }

        #[test]
        fn gif_rewrite_is_a_clean_fixed_point(
            blocks in proptest::collection::vec(gif_block(), 0..8),
            trailing in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            check_fixed_point(&gif(blocks, trailing))?;
        }
    }
}

/// A 3-in, 3-out lutAtoBType (B, matrix, M, CLUT and A, as lcms reads
/// them) with `gap` before each element and after the last.
fn lut_ab(gap: &[u8]) -> Vec<u8> {
    let curv = |g: f64| {
        let mut c = b"curv\0\0\0\0\0\0\0\x01".to_vec();
        c.extend_from_slice(&((g * 256.0).round() as u16).to_be_bytes());
        c.resize(16, 0);
        c.repeat(3)
    };
    let mut matrix = Vec::new();
    for v in [
        0.2180, 0.1926, 0.0715, 0.1112, 0.3585, 0.0303, 0.0070, 0.0485, 0.3570, 0.0, 0.0, 0.0,
    ] {
        matrix.extend_from_slice(&((v * 65536.0f64).round() as i32).to_be_bytes());
    }
    let mut clut = vec![2, 2, 2];
    clut.resize(16, 0);
    clut.extend_from_slice(&[2, 0, 0, 0]);
    for n in 0..8u16 {
        for bit in [4, 2, 1] {
            let v: u16 = if n & bit != 0 { 0xF000 } else { 0x0800 };
            clut.extend_from_slice(&v.to_be_bytes());
        }
    }
    let mut t = b"mAB \0\0\0\0\x03\x03\0\0".to_vec();
    t.resize(32, 0);
    for (k, body) in [curv(1.0), matrix, curv(2.2), clut, curv(0.8)]
        .iter()
        .enumerate()
    {
        t.extend_from_slice(gap);
        t.resize(t.len().next_multiple_of(4), 0);
        let at = t.len() as u32;
        t[12 + 4 * k..16 + 4 * k].copy_from_slice(&at.to_be_bytes());
        t.extend_from_slice(body);
    }
    t.extend_from_slice(gap);
    t
}

/// `p` (made v4) with one more tag at the end of its data.
fn with_tag(p: &[u8], sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let n = be32(p, 128);
    let mut out = p[..128].to_vec();
    out[8] = 4;
    out.extend_from_slice(&((n + 1) as u32).to_be_bytes());
    for i in 0..n {
        let e = 132 + 12 * i;
        out.extend_from_slice(&p[e..e + 4]);
        out.extend_from_slice(&((be32(p, e + 4) + 12) as u32).to_be_bytes());
        out.extend_from_slice(&p[e + 8..e + 12]);
    }
    let mut data = p[132 + 12 * n..be32(p, 0)].to_vec();
    data.resize(data.len().next_multiple_of(4), 0);
    let at = 132 + 12 * (n + 1) + data.len();
    out.extend_from_slice(sig);
    out.extend_from_slice(&(at as u32).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(body);
    let size = out.len() as u32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

/// Bytes in the gaps between a lutAtoB tag's elements (and after them) are
/// not colour: the rebuilt profile leaves them out, keeps the tag, and
/// renders the same (ImageMagick's colour-managed conversion, which reads
/// the A2B0 tag through lcms).
#[test]
fn icc_lut_tag_gaps_are_gone_and_colour_is_the_same() {
    let d = tempfile::tempdir().unwrap();
    let profile = with_tag(&base_profile(), b"A2B0", &lut_ab(CANARY.as_bytes()));
    let input = d.path().join("IMG_1.jpg");
    std::fs::write(&input, jpeg_with(&profile)).unwrap();
    let c = run(&["check", s(&input)]);
    assert_eq!(c.status.code(), Some(1), "{}", stdout(&c));
    assert!(
        stdout(&c).contains("colour profile text/date"),
        "{}",
        stdout(&c)
    );
    let out = clean(&input, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, CANARY.as_bytes()));
    let p = jpeg::parse(&bytes, &Limits::default())
        .unwrap()
        .icc_profile()
        .expect("profile kept");
    assert!(
        contains(&p, b"A2B0") && contains(&p, b"mAB "),
        "the LUT is kept"
    );
    assert!(contains(&p, &lut_ab(b"")[32..]), "its elements unchanged");
    assert_check(&out, true);
    assert_decodes_cleanly(&out);
    if have("convert", "-version") {
        assert_eq!(to_srgb(&input, d.path()), to_srgb(&out, d.path()));
        // And the conversion does read the LUT: without it, other pixels.
        let plain = d.path().join("plain.jpg");
        std::fs::write(&plain, jpeg_with(&base_profile())).unwrap();
        assert_ne!(to_srgb(&plain, d.path()), to_srgb(&out, d.path()));
    }
}

/// A 3-in, 3-out multiProcessElementsType (D2Bx): a curve set of gamma
/// `g` formula segments, then the sRGB D50 colorant matrix; `gap` before
/// each element and after the last.
fn mpet(g: f32, gap: &[u8]) -> Vec<u8> {
    let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_be_bytes()).collect() };
    let mut curf = b"curf\0\0\0\0\0\x01\0\0parf\0\0\0\0\0\0\0\0".to_vec();
    curf.extend_from_slice(&f32s(&[g, 1.0, 0.0, 0.0]));
    let mut cvst = b"cvst\0\0\0\0\0\x03\0\x03".to_vec();
    for k in 0..3u32 {
        let at = 12 + 24 + k * curf.len() as u32;
        cvst.extend_from_slice(&at.to_be_bytes());
        cvst.extend_from_slice(&(curf.len() as u32).to_be_bytes());
    }
    cvst.extend_from_slice(&curf.repeat(3));
    let mut matf = b"matf\0\0\0\0\0\x03\0\x03".to_vec();
    matf.extend_from_slice(&f32s(&[
        0.4361, 0.3851, 0.1431, 0.2225, 0.7169, 0.0606, 0.0139, 0.0971, 0.7141, 0.0, 0.0, 0.0,
    ]));
    let mut t = b"mpet\0\0\0\0\0\x03\0\x03\0\0\0\x02".to_vec();
    t.resize(32, 0);
    for (k, e) in [cvst, matf].iter().enumerate() {
        t.extend_from_slice(gap);
        t.resize(t.len().next_multiple_of(4), 0);
        let at = t.len() as u32;
        t[16 + 8 * k..20 + 8 * k].copy_from_slice(&at.to_be_bytes());
        t[20 + 8 * k..24 + 8 * k].copy_from_slice(&(e.len() as u32).to_be_bytes());
        t.extend_from_slice(e);
    }
    t.extend_from_slice(gap);
    t
}

/// Bytes in the gaps of a D2B0 (float, `mpet`) tag are not colour: the
/// rebuilt profile leaves them out and renders the same through lcms
/// (ImageMagick), which reads D2B0 before the matrix and curves (without
/// it, other pixels); an mpet with an element of a kind the rebuild does
/// not know is dropped, and the CMM's conversion falls back to them.
#[test]
fn icc_mpet_gaps_are_gone_and_colour_is_the_same() {
    let d = tempfile::tempdir().unwrap();
    let profile = with_tag(&base_profile(), b"D2B0", &mpet(1.0, CANARY.as_bytes()));
    let input = d.path().join("IMG_1.jpg");
    std::fs::write(&input, jpeg_with(&profile)).unwrap();
    let c = run(&["check", s(&input)]);
    assert_eq!(c.status.code(), Some(1), "{}", stdout(&c));
    let out = clean(&input, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(!contains(&bytes, CANARY.as_bytes()));
    let p = jpeg::parse(&bytes, &Limits::default())
        .unwrap()
        .icc_profile()
        .expect("profile kept");
    assert!(contains(&p, b"D2B0"), "the float tag is kept");
    assert!(contains(&p, &mpet(1.0, b"")), "its elements, packed");
    assert_check(&out, true);
    assert_decodes_cleanly(&out);
    // An unknown element: the tag goes, the rest of the profile stays.
    let mut odd = mpet(1.0, b"");
    let first = be32(&odd, 16);
    odd[first..first + 4].copy_from_slice(b"xACS");
    let dir2 = d.path().join("odd");
    std::fs::create_dir(&dir2).unwrap();
    let odd_in = dir2.join("IMG_2.jpg");
    std::fs::write(
        &odd_in,
        jpeg_with(&with_tag(&base_profile(), b"D2B0", &odd)),
    )
    .unwrap();
    let c = run(&["check", s(&odd_in)]);
    assert!(
        stdout(&c).contains("D2B0 with unknown or malformed processing elements"),
        "{}",
        stdout(&c)
    );
    let odd_out = clean(&odd_in, &[]);
    let p = jpeg::parse(&std::fs::read(&odd_out).unwrap(), &Limits::default())
        .unwrap()
        .icc_profile()
        .expect("profile kept");
    assert!(!contains(&p, b"D2B0") && contains(&p, b"rTRC"));
    if have("convert", "-version") {
        assert_eq!(to_srgb(&input, d.path()), to_srgb(&out, d.path()));
        let plain = d.path().join("plain.jpg");
        std::fs::write(&plain, jpeg_with(&base_profile())).unwrap();
        assert_ne!(
            to_srgb(&plain, d.path()),
            to_srgb(&out, d.path()),
            "the CMM reads D2B0 (linear curves here, sRGB's TRC without it)"
        );
        assert_eq!(to_srgb(&plain, d.path()), to_srgb(&odd_out, d.path()));
    }
}
