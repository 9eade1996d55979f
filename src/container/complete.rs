//! Telling a file that *ends early* (an upload still arriving, or one cut
//! off) from one that is corrupt: the container's own structure says how far
//! it should go. JPEG: segment lengths, then an EOI marker after the scan.
//! PNG: chunk lengths, then IEND. WebP: the RIFF size. Other formats, and
//! files whose structure is broken before it runs out, are not "truncated".

use memchr::memmem;

/// True when `bytes` is the start of a JPEG, PNG or WebP whose structure
/// runs past the end of the data.
pub fn ends_early(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_ends_early(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png_ends_early(bytes)
    } else if bytes.len() >= 4 && bytes.starts_with(b"RIFF") {
        webp_ends_early(bytes)
    } else {
        false
    }
}

fn jpeg_ends_early(b: &[u8]) -> bool {
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&ff), Some(&marker)) = (b.get(i), b.get(i + 1)) else {
            return true; // ran out between segments
        };
        if ff != 0xFF {
            return false; // broken, not short
        }
        match marker {
            0xD9 => return false,
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = b
            .get(i + 2..i + 4)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            return true;
        };
        let end = i + 2 + len;
        if end > b.len() {
            return true;
        }
        if marker == 0xDA {
            // Entropy-coded data: only a real marker can contain FF D9 here.
            return memmem::find(&b[end..], &[0xFF, 0xD9]).is_none();
        }
        i = end;
    }
}

fn png_ends_early(b: &[u8]) -> bool {
    let mut i = 8;
    loop {
        let Some(head) = b.get(i..i + 8) else {
            return true;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(end) = i.checked_add(12).and_then(|e| e.checked_add(len)) else {
            return false;
        };
        if end > b.len() {
            return true;
        }
        if &head[4..8] == b"IEND" {
            return false;
        }
        i = end;
    }
}

fn webp_ends_early(b: &[u8]) -> bool {
    let Some(size) = b.get(4..8) else {
        return true;
    };
    if b.get(8..12).is_some_and(|t| t != b"WEBP") {
        return false;
    }
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as u64;
    size + 8 > b.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/").to_owned() + rel).unwrap()
    }

    #[test]
    fn every_prefix_of_a_photo_ends_early_and_the_whole_does_not() {
        // Fixtures without data after the image (that part is not structure).
        for f in [
            "dirty/jpeg_icc.jpg",
            "dirty/jpeg_progressive.jpg",
            "dirty/png_rgba.png",
            "dirty/webp_meta.webp",
        ] {
            let b = fixture(f);
            assert!(!ends_early(&b), "{f} whole");
            let step = (b.len() / 97).max(1);
            for cut in (12..b.len()).step_by(step) {
                assert!(ends_early(&b[..cut]), "{f} cut at {cut} of {}", b.len());
            }
        }
    }

    #[test]
    fn corrupt_or_other_files_are_not_truncated() {
        assert!(!ends_early(b"hello, not a photo"));
        assert!(!ends_early(b""));
        let mut b = fixture("dirty/jpeg_full.jpg");
        b[2] = 0x00; // the first marker is gone: corrupt, however long
        assert!(!ends_early(&b));
        assert!(!ends_early(&fixture("dirty/tiff_tags.tif")));
    }
}
