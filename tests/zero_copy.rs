//! The lossless write path by reference (headers made from parsed values,
//! payloads copied from the input in the kernel) gives exactly the bytes of
//! the buffered writer, on every fixture and on generated files big enough
//! for their payloads to go by reference; also when the output is on
//! another file system (the kernel copy refuses, the buffered copy takes over).

use crate::util::{contains, files, fixtures};
use photodeid::batch;
use photodeid::pipeline::{Destination, FileOutcome, FileSettings};
use photodeid::pseudonym::Naming;
use photodeid::{clean_bytes, scan, CleanOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A noisy RGB picture (so its entropy-coded data is large).
fn noise(w: u32, h: u32) -> image::RgbImage {
    let mut state = 0x2545_f491_u32;
    image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let v = (state & 0x3f) as u8;
        image::Rgb([(x / 4) as u8 ^ v, (y / 3) as u8 ^ v, v.wrapping_mul(3)])
    })
}

/// A JPEG with a comment and an APP13 carrying a canary, 1 MB or so of scan.
fn big_jpeg() -> Vec<u8> {
    let mut v = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut v, 92)
        .encode_image(&noise(1200, 900))
        .unwrap();
    let mut out = v[..2].to_vec();
    out.extend_from_slice(b"\xFF\xFE\x00\x13Jane Q. Patientnam");
    out.extend_from_slice(b"\xFF\xED\x00\x0APS-Jane");
    out.extend_from_slice(&v[2..]);
    out
}

fn big_png() -> Vec<u8> {
    let mut v = Vec::new();
    noise(700, 500)
        .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
        .unwrap();
    // A tEXt chunk with a canary after IHDR.
    let mut chunk = Vec::new();
    let data = b"Author\0Jane Q. Patientname";
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(b"tEXt");
    h.update(data);
    chunk.extend_from_slice(&h.finalize().to_be_bytes());
    let at = 8 + 25;
    v.splice(at..at, chunk);
    v
}

/// A little-endian two-page 8-bit gray TIFF, 1000x200 per page in 20 strips
/// of 10 rows, an Artist tag on each page; strips before their IFD.
fn big_tiff() -> Vec<u8> {
    let pages: Vec<(u32, u32, Vec<u8>)> = (0..2u32)
        .map(|p| {
            let (w, h) = (1000u32, 200u32);
            (
                w,
                h,
                (0..w * h).map(|i| (i.wrapping_mul(31) ^ p) as u8).collect(),
            )
        })
        .collect();
    tiff_of(&pages)
}

/// Every fixture (flattened to unique names) plus the generated files.
fn inputs(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for f in files(&fixtures()) {
        let rel = f
            .strip_prefix(fixtures())
            .unwrap()
            .to_string_lossy()
            .to_string();
        // (fixtures/colour holds reference ICC profiles, not photos.)
        if [".txt", ".md", ".sh", ".icc"]
            .iter()
            .any(|e| rel.ends_with(e))
        {
            continue;
        }
        let name = rel.replace('/', "__");
        std::fs::copy(&f, dir.join(&name)).unwrap();
        names.push(name);
    }
    for (name, bytes) in [
        ("gen_big.jpg", big_jpeg()),
        ("gen_big.png", big_png()),
        ("gen_two_pages.tif", big_tiff()),
        // Over 16 MiB: read sparsely (directories only) on the by-reference path.
        ("gen_sparse.tif", tiff_of(&gray_pages(5, 2000, 1800))),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
        names.push(name.to_string());
    }
    names
}

/// Cleans `input` into `out` with the batch (the by-reference path).
fn batch_clean(input: &Path, out: &Path) -> BTreeMap<PathBuf, FileOutcome> {
    batch_clean_with(input, out, Naming::Keep, &FileSettings::default())
}

fn batch_clean_with(
    input: &Path,
    out: &Path,
    naming: Naming,
    settings: &FileSettings,
) -> BTreeMap<PathBuf, FileOutcome> {
    let found = scan::scan(&[input.to_path_buf()], Some(out));
    assert!(found.errors.is_empty());
    std::fs::create_dir_all(out).unwrap();
    let dest = Destination::Folder {
        dir: out.to_path_buf(),
        naming,
    };
    let got = Mutex::new(BTreeMap::new());
    batch::run(&found.jobs, &dest, settings, 2, &|o: FileOutcome| {
        got.lock().unwrap().insert(o.input.clone(), o);
    })
    .unwrap();
    got.into_inner().unwrap()
}

#[test]
fn the_by_reference_writer_gives_the_buffered_writers_bytes_on_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let names = inputs(&input);
    // Files changed in the last second are cleaned in memory (a change
    // right after the look could go unseen): let these settle.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let mut outs = vec![tmp.path().join("out")];
    // Another file system, when there is one: the kernel copy refuses
    // (EXDEV), the buffered copy writes the same bytes.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            outs.push(d.keep());
        }
    }
    let mut by_reference = 0;
    for out in &outs {
        let got = batch_clean(&input, out);
        assert_eq!(got.len(), names.len());
        for name in &names {
            let bytes = std::fs::read(input.join(name)).unwrap();
            let ext = Path::new(name).extension().and_then(|e| e.to_str());
            let outcome = &got[&input.join(name)];
            match clean_bytes(&bytes, ext, &CleanOptions::default()) {
                Ok(want) => {
                    let done = outcome.result.as_ref().unwrap_or_else(|e| {
                        panic!("{name}: buffered clean worked, by reference failed: {e}")
                    });
                    let path = outcome.output.as_ref().unwrap();
                    let written = std::fs::read(path).unwrap();
                    assert!(
                        written == want.bytes,
                        "{name}: {} bytes by reference, {} buffered",
                        written.len(),
                        want.bytes.len()
                    );
                    if done.referenced > 0 {
                        by_reference += 1;
                    } else {
                        assert!(!name.starts_with("gen_"), "{name}: nothing by reference");
                    }
                }
                Err(e) => assert!(
                    outcome.result.is_err(),
                    "{name}: buffered clean failed ({e}), by reference did not"
                ),
            }
        }
        // A canary inside the picture data itself (a lossy WebP's middle
        // token partition) is what the default copies by design and only
        // `--thorough` cuts (README, threat model; tests/privacy_webp.rs).
        let inside_picture_data = ["regress__webp_vp8_partitions.webp"];
        for f in files(out) {
            if inside_picture_data.iter().any(|n| f.ends_with(n)) {
                continue;
            }
            let b = std::fs::read(&f).unwrap();
            assert!(
                !contains(&b, b"Jane Q. Patientname"),
                "{} keeps a canary",
                f.display()
            );
        }
    }
    for out in &outs[1..] {
        let _ = std::fs::remove_dir_all(out);
    }
    // The big generated files (and some fixtures) had payloads by reference.
    assert!(
        by_reference >= 3 * outs.len(),
        "only {by_reference} outputs had payloads copied by reference"
    );
}

#[test]
fn a_tiff_read_sparsely_reads_its_directories_not_its_strips() {
    // Ten pages of 1000x400 gray: 4 MB of strips, each page's IFD after them.
    let mut pages = Vec::new();
    for _ in 0..5 {
        pages.extend(big_tiff_pages());
    }
    let bytes = tiff_of(&pages);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("scan.tif");
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let limits = photodeid::Limits::default();
    let head = 64 << 10;
    let mut buf = vec![0u8; bytes.len()];
    buf[..head].copy_from_slice(&bytes[..head]);
    let sparse = photodeid::container::tiff::load_sparse(&mut buf, head, &file, &limits)
        .unwrap()
        .expect("read sparsely");
    assert!(
        sparse.loaded_bytes() < bytes.len() as u64 / 4,
        "read {} of {} bytes",
        sparse.loaded_bytes(),
        bytes.len()
    );
    let t = photodeid::container::tiff::parse_sparse(&buf, &limits, &sparse).unwrap();
    let full = photodeid::container::tiff::parse(&bytes, &limits).unwrap();
    assert_eq!(t.pages.len(), 10);
    assert_eq!(t.extent_digest(&buf), full.extent_digest(&bytes));
    assert_eq!(
        t.inventory().summary(),
        full.inventory().summary(),
        "the same findings"
    );
}

/// A keyed name of a TIFF read sparsely is hashed from the file beside the
/// copy (one worker may take the hash of another's file): the name is still
/// the keyed BLAKE3 of every input byte, the bytes the buffered writer's,
/// and nothing but the outputs is left, with two workers and with one.
#[test]
fn keyed_names_of_tiffs_read_sparsely_are_the_keyed_hash_of_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let a = tiff_of(&gray_pages(5, 2000, 1800));
    let b = tiff_of(&gray_pages(6, 2000, 1700));
    assert!(a.len() > 16 << 20 && b.len() > 16 << 20, "read sparsely");
    // `c` has `a`'s bytes: the same name, found up to date.
    for (name, bytes) in [("a.tif", &a), ("b.tif", &b), ("c.tif", &a)] {
        std::fs::write(input.join(name), bytes).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let key = [9u8; 32];
    let keyed = |bytes: &[u8]| {
        let h = blake3::keyed_hash(&key, bytes);
        format!("{}.tif", photodeid::pseudonym::hex(&h.as_bytes()[..16]))
    };
    for threads in [2, 1] {
        let out = tmp.path().join(format!("out-{threads}"));
        let found = scan::scan(std::slice::from_ref(&input), Some(&out));
        let dest = Destination::Folder {
            dir: out.clone(),
            naming: Naming::Keyed(key),
        };
        let got = Mutex::new(Vec::new());
        batch::run(
            &found.jobs,
            &dest,
            &FileSettings::default(),
            threads,
            &|o| got.lock().unwrap().push(o),
        )
        .unwrap();
        let got = got.into_inner().unwrap();
        assert_eq!(got.len(), 3);
        for o in &got {
            let done = o.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
            let bytes = std::fs::read(&o.input).unwrap();
            let output = o.output.as_ref().expect("an output path");
            assert_eq!(output, &out.join(keyed(&bytes)), "{}", o.input.display());
            assert!(done.referenced > 0, "strips copied by reference");
            let want = clean_bytes(&bytes, Some("tif"), &CleanOptions::default()).unwrap();
            assert!(
                std::fs::read(output).unwrap() == want.bytes,
                "buffered writer's bytes"
            );
        }
        let mut left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        let mut want = vec![keyed(&a), keyed(&b)];
        want.sort();
        assert_eq!(left, want, "the two outputs and no temporary file");
    }
    // An input already named by its keyed hash, cleaned into its own folder
    // with --overwrite: the name, known only after the copy, is the input's
    // path, so nothing is published and the input stays as it was.
    let own = tmp.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    let path = own.join(keyed(&a));
    std::fs::write(&path, &a).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let found = scan::scan(std::slice::from_ref(&own), None);
    let dest = Destination::Folder {
        dir: own.clone(),
        naming: Naming::Keyed(key),
    };
    let settings = FileSettings {
        write: photodeid::commit::WriteMode {
            overwrite: true,
            sync: false,
        },
        ..FileSettings::default()
    };
    let got = Mutex::new(Vec::new());
    batch::run(&found.jobs, &dest, &settings, 2, &|o| {
        got.lock().unwrap().push(o)
    })
    .unwrap();
    let got = got.into_inner().unwrap();
    let err = got[0].result.as_ref().expect_err("refused");
    assert!(err.to_string().contains("replace the input"), "{err}");
    assert!(std::fs::read(&path).unwrap() == a, "the input is untouched");
    assert_eq!(
        std::fs::read_dir(&own).unwrap().count(),
        1,
        "no temporary file"
    );
}

/// (width, height, strip bytes) of two pages like `big_tiff`'s, taller.
fn big_tiff_pages() -> Vec<(u32, u32, Vec<u8>)> {
    gray_pages(2, 1000, 400)
}

/// `n` gray pages of `w` x `h`, each with its own pattern.
fn gray_pages(n: u32, w: u32, h: u32) -> Vec<(u32, u32, Vec<u8>)> {
    (0..n)
        .map(|p| {
            let px = (0..w * h).map(|i| (i.wrapping_mul(13) ^ p) as u8).collect();
            (w, h, px)
        })
        .collect()
}

/// A little-endian TIFF of 8-bit gray pages, 10-row strips, an Artist tag
/// on each page, every IFD after its page's strips.
fn tiff_of(pages: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let rows = 10u32;
    let mut v = b"II*\0\0\0\0\0".to_vec();
    let mut link = 4usize;
    for (w, h, px) in pages {
        let strip = (w * rows) as usize;
        let offsets: Vec<u32> = px
            .chunks(strip)
            .map(|c| {
                let at = v.len() as u32;
                v.extend_from_slice(c);
                at
            })
            .collect();
        let artist = b"Jane Q. Patientname\0";
        let artist_at = v.len() as u32;
        v.extend_from_slice(artist);
        let table = v.len() as u32;
        offsets
            .iter()
            .for_each(|o| v.extend_from_slice(&o.to_le_bytes()));
        let counts = v.len() as u32;
        px.chunks(strip)
            .for_each(|c| v.extend_from_slice(&(c.len() as u32).to_le_bytes()));
        let n = offsets.len() as u32;
        let entries: [(u16, u16, u32, u32); 10] = [
            (254, 4, 1, 2),
            (256, 4, 1, *w),
            (257, 4, 1, *h),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, n, table),
            (278, 4, 1, rows),
            (279, 4, n, counts),
            (315, 2, artist.len() as u32, artist_at),
        ];
        let ifd = v.len() as u32;
        v[link..link + 4].copy_from_slice(&ifd.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&count.to_le_bytes());
            v.extend_from_slice(&value.to_le_bytes());
        }
        link = v.len();
        v.extend_from_slice(&[0; 4]);
    }
    v
}

/// HEIF/AVIF: the header is made from the parsed values and every kept
/// HEVC/AV1 payload goes by reference (the audit checks where each comes
/// from instead of hashing it); the bytes are the buffered writer's, with
/// every naming (a name that does not hash the bytes reads only the boxes,
/// never the pictures: `heif::load_sparse`) and with `--strip-icc`. A keyed
/// name is the keyed hash of the whole input, as the buffered path names it.
#[test]
fn heif_payloads_go_by_reference_with_the_buffered_writers_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut sources = files(&fixtures().join("heif"));
    // The real phone HEIFs, where the shared corpus is beside the checkout.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/exif-samples/heic");
    if corpus.is_dir() {
        sources.extend(files(&corpus));
    } else {
        eprintln!("shared corpus not found: real phone HEICs skipped");
    }
    let mut names = Vec::new();
    for f in sources {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let lower = name.to_ascii_lowercase();
        if [".heic", ".heif", ".avif"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            std::fs::copy(&f, input.join(&name)).unwrap();
            names.push(name);
        }
    }
    assert!(names.len() >= 6, "HEIF fixtures: {names:?}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let key = [7u8; 32];
    let mut strip = FileSettings::default();
    strip.clean.strip_icc = true;
    let runs = [
        ("keep", Naming::Keep, FileSettings::default()),
        ("keep, strip icc", Naming::Keep, strip),
        ("keyed", Naming::Keyed(key), FileSettings::default()),
        ("random", Naming::Random, FileSettings::default()),
    ];
    for (n, (what, naming, settings)) in runs.into_iter().enumerate() {
        let out = tmp.path().join(format!("out{n}"));
        let got = batch_clean_with(&input, &out, naming.clone(), &settings);
        for name in &names {
            let bytes = std::fs::read(input.join(name)).unwrap();
            let ext = Path::new(name).extension().and_then(|e| e.to_str());
            let want =
                clean_bytes(&bytes, ext, &settings.clean).unwrap_or_else(|e| panic!("{name}: {e}"));
            let outcome = &got[&input.join(name)];
            let done = outcome
                .result
                .as_ref()
                .unwrap_or_else(|e| panic!("{what}, {name}: {e}"));
            let path = outcome.output.as_ref().unwrap();
            let written = std::fs::read(path).unwrap();
            assert!(
                written == want.bytes,
                "{what}, {name}: differs from the buffered writer"
            );
            // Everything after the made header (ftyp, meta, mdat header) is the input's.
            let mdat = written.windows(4).position(|w| w == b"mdat").unwrap() + 4;
            assert_eq!(
                done.referenced as usize,
                written.len() - mdat,
                "{what}, {name}: mdat payloads by reference"
            );
            assert!(contains(
                &bytes,
                &written[mdat..mdat + 64.min(written.len() - mdat)]
            ));
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            match &naming {
                Naming::Keep => assert_eq!(path, &out.join(name)),
                Naming::Keyed(_) => {
                    assert_eq!(Some(stem), naming.pseudonym(&bytes).unwrap(), "{name}")
                }
                Naming::Random => assert!(
                    stem.len() == 32 && stem.bytes().all(|c| c.is_ascii_hexdigit()),
                    "{name}: {stem}"
                ),
            }
        }
    }
}
