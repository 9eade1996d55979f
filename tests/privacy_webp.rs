//! Issue 9, WebP: bytes after the coded data of a bitstream. A lossy (VP8)
//! WebP from cwebp gets a canary inside its VP8 chunk, after the last token
//! partition's data or after the first partition's (its size field in the
//! frame tag grown to cover it); a synthetic frame holds one in a middle
//! token partition. Each is cleaned on each path: the default lossless
//! rewrite copies the bitstream (finding the end needs the token walk,
//! `--thorough` only; `check --thorough` of its output still names it),
//! `--thorough` cuts every partition to its coded data, `--region`
//! re-encodes. Outputs must read in `webpinfo` and `dwebp` without a
//! warning, lossless ones keep the input's pixels (dwebp to PPM, compared),
//! and `check --thorough` names the finding in the input and none in the
//! `--thorough` and `--region` outputs.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &[u8] = b"WEBP-CANARY-Jane-Q-Patientname";

/// Whether an independent tool is installed; on CI its absence fails.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("-version").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} missing on CI");
        eprintln!("{tool} not installed: that check is skipped locally");
    }
    ok
}

/// A 96x64 lossy WebP (simple format) from cwebp.
fn lossy(dir: &Path) -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        let n = (x * 7919 + y * 104729) % 251;
        image::Rgb([(x * 2) as u8, (y * 3) as u8, n as u8])
    });
    let png = dir.join("src.png");
    img.save(&png).unwrap();
    let out = dir.join("src.webp");
    let o = Command::new("cwebp")
        .args(["-quiet", "-q", "80"])
        .arg(&png)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out).unwrap()
}

/// The payload of the simple file's VP8 chunk.
fn vp8(file: &[u8]) -> &[u8] {
    assert_eq!(&file[12..16], b"VP8 ");
    let len = u32::from_le_bytes(file[16..20].try_into().unwrap()) as usize;
    &file[20..20 + len]
}

/// A simple WebP holding `payload` as its VP8 chunk.
fn simple(payload: &[u8]) -> Vec<u8> {
    let pad = payload.len() & 1;
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&((payload.len() + pad + 12) as u32).to_le_bytes());
    f.extend_from_slice(b"WEBPVP8 ");
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len() + pad, 0);
    f
}

fn after_last_partition(file: &[u8]) -> Vec<u8> {
    let mut p = vp8(file).to_vec();
    p.extend_from_slice(CANARY);
    simple(&p)
}

fn after_first_partition(file: &[u8]) -> Vec<u8> {
    let p = vp8(file);
    let tag = u32::from_le_bytes([p[0], p[1], p[2], 0]);
    let first = (tag >> 5) as usize;
    let mut out = p[..10 + first].to_vec();
    out.extend_from_slice(CANARY);
    out.extend_from_slice(&p[10 + first..]);
    let tag = (tag & 0x1F) | ((first + CANARY.len()) as u32) << 5;
    out[..3].copy_from_slice(&tag.to_le_bytes()[..3]);
    simple(&out)
}

/// dwebp's pixels (PPM), asserting it decodes without a word on stderr.
fn dwebp(path: &Path) -> Vec<u8> {
    let out = path.with_extension("ppm");
    let o = Command::new("dwebp")
        .arg("-quiet")
        .arg(path)
        .arg("-ppm")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "dwebp {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).unwrap()
}

fn webpinfo_clean(path: &Path) {
    let o = Command::new("webpinfo").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("No error detected") && !text.contains("Warning"),
        "webpinfo {}: {text}",
        path.display()
    );
}

fn check_thorough(path: &Path) -> (Option<i32>, String) {
    let c = run(&["check", "--thorough", path.to_str().unwrap()]);
    (c.status.code(), stdout(&c))
}

fn clean_to(input: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "clean",
        "-q",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert!(
        r.status.success(),
        "{} {extra:?}: {}",
        input.display(),
        stderr(&r)
    );
}

const LOSSY_FINDING: &str = "after the coded data of the VP8 (lossy) bitstream";

/// One dirty lossy file through every path.
fn every_path(dir: &Path, name: &str, bytes: &[u8], canary: &[u8], tools: bool) {
    let input = dir.join(format!("{name}.webp"));
    std::fs::write(&input, bytes).unwrap();
    let (code, text) = check_thorough(&input);
    assert_eq!(code, Some(1), "{name}: {text}");
    assert!(text.contains(LOSSY_FINDING), "{name}: {text}");
    let pixels = tools.then(|| dwebp(&input));
    for (path, extra, lossless, cut) in [
        ("lossless", &[][..], true, false),
        ("thorough", &["--thorough"][..], true, true),
        ("region", &["--region", "4,4,24,24"][..], false, true),
    ] {
        let out: PathBuf = dir.join(format!("{name}-{path}.webp"));
        clean_to(&input, &out, extra);
        let got = std::fs::read(&out).unwrap();
        let (code, text) = check_thorough(&out);
        if cut {
            assert!(!contains(&got, canary), "{name} {path}: canary kept");
            assert_eq!(code, Some(0), "{name} {path}: {text}");
        } else {
            // The default path copies the bitstream (README, threat model):
            // the thorough audit of its output says what is left.
            assert!(text.contains(LOSSY_FINDING), "{name} {path}: {text}");
        }
        if tools {
            webpinfo_clean(&out);
            let p = dwebp(&out);
            if lossless {
                assert!(Some(&p) == pixels.as_ref(), "{name} {path}: pixels changed");
            }
        }
    }
}

#[test]
fn vp8_slack_is_cut_on_the_thorough_path() {
    if !have("cwebp") {
        return;
    }
    let tools = have("dwebp") && have("webpinfo");
    let dir = tempfile::tempdir().unwrap();
    let base = lossy(dir.path());
    let (code, text) = check_thorough(&{
        let p = dir.path().join("base.webp");
        std::fs::write(&p, &base).unwrap();
        p
    });
    assert_eq!(code, Some(0), "cwebp's own output: {text}");
    every_path(
        dir.path(),
        "last",
        &after_last_partition(&base),
        CANARY,
        tools,
    );
    every_path(
        dir.path(),
        "first",
        &after_first_partition(&base),
        CANARY,
        tools,
    );
    let parts = std::fs::read(fixtures().join("regress/webp_vp8_partitions.webp")).unwrap();
    every_path(dir.path(), "middle", &parts, b"Jane Q. Patientname", tools);
}

/// A lossless file with bytes appended to its VP8L data: `check --thorough`
/// names them, `clean --thorough` (a re-encode) leaves none.
#[test]
fn vp8l_slack_is_reported_and_gone_after_thorough() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::RgbaImage::from_fn(40, 30, |x, y| {
        image::Rgba([x as u8 * 5, y as u8 * 7, 9, 255])
    });
    let mut file = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut file)
        .encode(img.as_raw(), 40, 30, image::ExtendedColorType::Rgba8)
        .unwrap();
    assert_eq!(&file[12..16], b"VP8L");
    let len = u32::from_le_bytes(file[16..20].try_into().unwrap()) as usize;
    let mut payload = file[20..20 + len].to_vec();
    payload.extend_from_slice(CANARY);
    let pad = payload.len() & 1;
    let mut dirty = b"RIFF".to_vec();
    dirty.extend_from_slice(&((payload.len() + pad + 12) as u32).to_le_bytes());
    dirty.extend_from_slice(b"WEBPVP8L");
    dirty.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    dirty.extend_from_slice(&payload);
    dirty.resize(dirty.len() + pad, 0);
    let input = dir.path().join("l.webp");
    std::fs::write(&input, &dirty).unwrap();
    let (code, text) = check_thorough(&input);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{} bytes after the coded data of the VP8L (lossless) bitstream",
            CANARY.len()
        )),
        "{text}"
    );
    let out = dir.path().join("l-thorough.webp");
    clean_to(&input, &out, &["--thorough"]);
    assert!(!contains(&std::fs::read(&out).unwrap(), CANARY));
    assert_eq!(check_thorough(&out).0, Some(0));
    assert_eq!(decode(&out).to_rgba8(), img, "lossless both ways");
}

/// Truncated and bit-flipped VP8 data: the walker errs or answers, never
/// panics, and never grows the chunk.
#[test]
fn vp8_walker_survives_truncation_and_bit_flips() {
    if !have("cwebp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = lossy(dir.path());
    let data = vp8(&base);
    for n in (0..data.len()).step_by(7) {
        let _ = photodeid::container::vp8::walk(&data[..n]);
    }
    for bit in (0..data.len() * 8).step_by(5) {
        let mut d = data.to_vec();
        d[bit / 8] ^= 1 << (bit % 8);
        if let Ok(w) = photodeid::container::vp8::walk(&d) {
            assert!(w.rebuild(&d).len() <= d.len(), "bit {bit}");
        }
    }
}

/// Top-level RIFF chunks: (fourcc, payload start, payload length).
fn riff_chunks(file: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= file.len() {
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((file[at..at + 4].try_into().unwrap(), at + 8, len));
        at += 8 + len + (len & 1);
    }
    out
}

/// `anim` with `canary` appended inside the first frame's VP8 chunk (the
/// chunk, ANMF and RIFF sizes grown to cover it, as a planted carrier would).
fn canary_in_first_frame(anim: &[u8], canary: &[u8]) -> Vec<u8> {
    let (_, start, len) = riff_chunks(anim)
        .into_iter()
        .find(|c| &c.0 == b"ANMF")
        .expect("an ANMF frame");
    let frame = &anim[start..start + len];
    let mut sub = 16;
    while &frame[sub..sub + 4] != b"VP8 " {
        let l = u32::from_le_bytes(frame[sub + 4..sub + 8].try_into().unwrap()) as usize;
        sub += 8 + l + (l & 1);
    }
    let vp8_len = u32::from_le_bytes(frame[sub + 4..sub + 8].try_into().unwrap()) as usize;
    let mut extra = canary.to_vec();
    if (vp8_len + extra.len()) % 2 == 1 {
        extra.push(b'!');
    }
    let insert = start + sub + 8 + vp8_len;
    let mut out = anim[..insert].to_vec();
    out.extend_from_slice(&extra);
    out.extend_from_slice(&anim[insert..]);
    let grow = |out: &mut Vec<u8>, at: usize| {
        let v = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) + extra.len() as u32;
        out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    };
    grow(&mut out, start + sub + 4);
    grow(&mut out, start - 4);
    grow(&mut out, 4);
    out
}

/// Every frame of an animation, composited (image-webp's decoder).
fn frames(path: &Path) -> Vec<Vec<u8>> {
    use image::AnimationDecoder;
    let d =
        image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(std::fs::read(path).unwrap()))
            .unwrap();
    d.into_frames()
        .map(|f| f.unwrap().into_buffer().into_raw())
        .collect()
}

/// An animation (img2webp, lossy frames) with a canary after the coded
/// data of its first frame's VP8 bitstream: `check --thorough` names the
/// frame, `clean --thorough` cuts it (every frame walked), the frames stay
/// the same, and webpinfo reads the output without a warning.
#[test]
fn animation_frames_are_walked_and_cut_by_thorough() {
    if !have("img2webp") || !have("webpinfo") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut pngs = Vec::new();
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(80, 48, |x, y| {
            image::Rgb([
                (x * 3 + k * 40) as u8,
                (y * 5) as u8,
                ((x * y + k) % 251) as u8,
            ])
        });
        let p = d.path().join(format!("f{k}.png"));
        img.save(&p).unwrap();
        pngs.push(p);
    }
    let anim = d.path().join("anim.webp");
    let o = Command::new("img2webp")
        .args(["-lossy", "-q", "70", "-d", "120"])
        .args(&pngs)
        .arg("-o")
        .arg(&anim)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let clean_anim = std::fs::read(&anim).unwrap();
    let (code, text) = check_thorough(&anim);
    assert_eq!(code, Some(0), "img2webp's own output is clean: {text}");

    let dirty = d.path().join("dirty.webp");
    std::fs::write(&dirty, canary_in_first_frame(&clean_anim, CANARY)).unwrap();
    let (code, text) = check_thorough(&dirty);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(LOSSY_FINDING) && text.contains("frame 1"),
        "{text}"
    );
    let want = frames(&dirty);
    assert_eq!(want.len(), 3);

    let out = d.path().join("thorough.webp");
    clean_to(&dirty, &out, &["--thorough"]);
    let got = std::fs::read(&out).unwrap();
    assert!(!contains(&got, CANARY), "canary kept in the animation");
    let (code, text) = check_thorough(&out);
    assert_eq!(code, Some(0), "{text}");
    webpinfo_clean(&out);
    assert!(frames(&out) == want, "the frames changed");
    // Idempotent: the cut output cleaned again is the same file.
    let again = d.path().join("again.webp");
    clean_to(&out, &again, &["--thorough"]);
    assert_eq!(std::fs::read(&again).unwrap(), got);
}

/// `file` with `canary` appended inside its top-level `fourcc` chunk (that
/// chunk's and the RIFF size grown).
fn canary_in_chunk(file: &[u8], fourcc: &[u8; 4], canary: &[u8]) -> Vec<u8> {
    let (_, start, len) = riff_chunks(file)
        .into_iter()
        .find(|c| &c.0 == fourcc)
        .expect("the chunk");
    let mut extra = canary.to_vec();
    if (len + extra.len()) % 2 == 1 {
        extra.push(b'!');
    }
    let mut out = file[..start + len].to_vec();
    out.extend_from_slice(&extra);
    out.extend_from_slice(&file[start + len + (len & 1)..]);
    let grow = |out: &mut Vec<u8>, at: usize, by: usize| {
        let v = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) + by as u32;
        out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    };
    grow(&mut out, start - 4, extra.len());
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

/// A lossy WebP with an alpha plane, coded (cwebp's default) and raw
/// (`-alpha_method 0`), each with a canary after its plane in ALPH: found by
/// `check --thorough`, cut by `clean --thorough`, pixels and alpha kept
/// (dwebp to PAM), webpinfo reads it without a warning.
#[test]
fn alpha_plane_slack_is_found_and_cut_by_thorough() {
    if !have("cwebp") || !have("webpinfo") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = image::RgbaImage::from_fn(90, 60, |x, y| {
        image::Rgba([
            (x * 2) as u8,
            (y * 4) as u8,
            90,
            ((x * 5 + y * 3) % 256) as u8,
        ])
    });
    let png = d.path().join("alpha.png");
    img.save(&png).unwrap();
    for method in ["1", "0"] {
        let src = d.path().join(format!("alpha{method}.webp"));
        let o = Command::new("cwebp")
            .args(["-quiet", "-q", "80", "-alpha_method", method])
            .arg(&png)
            .arg("-o")
            .arg(&src)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (code, text) = check_thorough(&src);
        assert_eq!(code, Some(0), "cwebp's own output is clean: {text}");
        let bytes = std::fs::read(&src).unwrap();
        let dirty = d.path().join(format!("dirty{method}.webp"));
        std::fs::write(&dirty, canary_in_chunk(&bytes, b"ALPH", CANARY)).unwrap();
        let (code, text) = check_thorough(&dirty);
        assert_eq!(code, Some(1), "method {method}: {text}");
        assert!(
            text.contains("alpha plane (ALPH)"),
            "method {method}: {text}"
        );
        let out = d.path().join(format!("thorough{method}.webp"));
        clean_to(&dirty, &out, &["--thorough"]);
        let got = std::fs::read(&out).unwrap();
        assert!(!contains(&got, CANARY), "method {method}: canary kept");
        let (code, text) = check_thorough(&out);
        assert_eq!(code, Some(0), "method {method}: {text}");
        webpinfo_clean(&out);
        let pam = |p: &Path| {
            let o = Command::new("dwebp")
                .arg("-quiet")
                .arg(p)
                .arg("-pam")
                .arg("-o")
                .arg(p.with_extension("pam"))
                .output()
                .unwrap();
            assert!(
                o.status.success() && o.stderr.is_empty(),
                "dwebp {}",
                p.display()
            );
            std::fs::read(p.with_extension("pam")).unwrap()
        };
        assert!(
            pam(&out) == pam(&dirty),
            "method {method}: pixels or alpha changed"
        );
    }
}
