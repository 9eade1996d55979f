//! What an ICC colour profile says about itself, for the audit: its
//! description, its creation date and the device it was made for. A
//! camera's or phone's generic profile (sRGB, Display P3) names no one; a
//! profile made by calibrating one device can name that device.

use crate::metadata::short_value;

/// `ICC profile "Display P3", 536 bytes, dated 2017-07-07, device "..."`.
pub fn describe(profile: &[u8]) -> String {
    let mut s = match text_tag(profile, b"desc") {
        Some(d) => format!(
            "ICC profile \"{}\", {} bytes",
            short_value(&d, 60),
            profile.len()
        ),
        None => format!("ICC profile, {} bytes", profile.len()),
    };
    if let Some(date) = date(profile) {
        s.push_str(&format!(", dated {date}"));
    }
    let device: Vec<String> = [b"dmnd", b"dmdd"]
        .iter()
        .filter_map(|sig| text_tag(profile, sig))
        .map(|t| short_value(&t, 40))
        .filter(|t| !t.is_empty())
        .collect();
    if !device.is_empty() {
        s.push_str(&format!(", device \"{}\"", device.join(" ")));
    }
    s
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The header's creation date, `YYYY-MM-DD`.
fn date(p: &[u8]) -> Option<String> {
    let (y, m, d) = (be16(p, 24)?, be16(p, 26)?, be16(p, 28)?);
    (y > 0 && (1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// The text of tag `sig`: `desc`/`text` (ICC v2) or `mluc` (v4, first record).
fn text_tag(p: &[u8], sig: &[u8; 4]) -> Option<String> {
    let count = be32(p, 128)?.min(256);
    let (off, size) = (0..count).find_map(|i| {
        let e = 132 + 12 * i;
        (p.get(e..e + 4)? == sig).then_some(())?;
        Some((be32(p, e + 4)?, be32(p, e + 8)?))
    })?;
    let t = p.get(off..off.checked_add(size)?)?;
    match t.get(..4)? {
        b"desc" => {
            let n = be32(t, 8)?;
            ascii(t.get(12..12usize.checked_add(n)?)?)
        }
        b"text" => ascii(t.get(8..)?),
        b"mluc" => {
            let (len, at) = (be32(t, 20)?, be32(t, 24)?);
            let units: Vec<u16> = t
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

fn ascii(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Some(String::from_utf8_lossy(&b[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile header with a date and the given tags.
    fn profile(tags: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0u8; 128];
        p[24..30].copy_from_slice(&[0x07, 0xE1, 0, 7, 0, 7]); // 2017-07-07
        p.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        let mut data_at = 132 + 12 * tags.len();
        let mut data = Vec::new();
        for (sig, body) in tags {
            p.extend_from_slice(*sig);
            p.extend_from_slice(&(data_at as u32).to_be_bytes());
            p.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(body);
            data_at += body.len();
        }
        p.extend_from_slice(&data);
        p
    }

    fn desc_v2(text: &str) -> Vec<u8> {
        let mut t = b"desc\0\0\0\0".to_vec();
        t.extend_from_slice(&(text.len() as u32 + 1).to_be_bytes());
        t.extend_from_slice(text.as_bytes());
        t.push(0);
        t
    }

    fn mluc(text: &str) -> Vec<u8> {
        let units: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let mut t = b"mluc\0\0\0\0".to_vec();
        t.extend_from_slice(&1u32.to_be_bytes());
        t.extend_from_slice(&12u32.to_be_bytes());
        t.extend_from_slice(b"enUS");
        t.extend_from_slice(&(units.len() as u32).to_be_bytes());
        t.extend_from_slice(&28u32.to_be_bytes());
        t.extend_from_slice(&units);
        t
    }

    #[test]
    fn names_description_date_and_device() {
        let p = profile(&[
            (b"desc", desc_v2("Display P3")),
            (b"dmdd", mluc("Dr Smith's scanner")),
        ]);
        let d = describe(&p);
        assert!(d.starts_with("ICC profile \"Display P3\""), "{d}");
        assert!(d.contains("dated 2017-07-07"), "{d}");
        assert!(d.contains("device \"Dr Smith's scanner\""), "{d}");
    }

    #[test]
    fn bad_tables_never_panic() {
        let p = profile(&[(b"desc", desc_v2("sRGB"))]);
        for n in 0..p.len() {
            let _ = describe(&p[..n]);
        }
        let mut huge = p.clone();
        huge[128..132].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = describe(&huge);
    }
}
