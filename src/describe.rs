//! Short human descriptions of XMP packets and Photoshop/IPTC resources for
//! the audit. They only describe: the scrubber drops these blocks whole.

use crate::metadata::short_value;

/// How much of a packet is read to name its properties: the description
/// only needs a few, and a hostile multi-megabyte packet must stay cheap
/// (linear: each name is looked for at most `XMP_NAME` bytes back).
const XMP_SCAN: usize = 64 * 1024;
/// Longest property name looked for (`exif:GPSDestLatitudeRef` is 23).
const XMP_NAME: usize = 64;

/// `XMP packet, 3456 bytes: dc:creator, exif:GPSLatitude, ...`
pub fn xmp(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(XMP_SCAN)]);
    let mut props: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, _) in text.match_indices('<') {
        let rest = &text[i + 1..];
        let Some(end) = rest
            .char_indices()
            .take(XMP_NAME + 1)
            .find(|&(_, c)| c.is_whitespace() || c == '>' || c == '/')
            .map(|(j, _)| j)
        else {
            continue;
        };
        let name = &rest[..end];
        let interesting = name.contains(':')
            && !name.starts_with("rdf:")
            && !name.starts_with("x:")
            && !name.starts_with('?');
        if interesting && seen.insert(name) {
            props.push(name);
        }
    }
    // Properties written as attributes: ` dc:creator="..."`.
    for (i, _) in text.match_indices("=\"") {
        let mut from = i.saturating_sub(XMP_NAME);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let name = text[from..i]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("");
        let interesting = name.contains(':')
            && !name.starts_with("xmlns:")
            && !name.starts_with("rdf:")
            && !name.starts_with("x:");
        if interesting && seen.insert(name) {
            props.push(name);
        }
    }
    let shown: Vec<&str> = props.iter().take(6).copied().collect();
    let more = props.len().saturating_sub(shown.len());
    let mut s = format!("XMP packet, {} bytes", payload.len());
    if !shown.is_empty() {
        s.push_str(": ");
        s.push_str(&short_value(&shown.join(", "), 120));
        if more > 0 {
            s.push_str(&format!(" +{more} more"));
        }
    }
    s
}

/// Names of the IPTC datasets people put identifying text in.
fn iptc_name(record: u8, dataset: u8) -> Option<&'static str> {
    Some(match (record, dataset) {
        (2, 5) => "ObjectName",
        (2, 25) => "Keywords",
        (2, 55) => "DateCreated",
        (2, 80) => "By-line",
        (2, 90) => "City",
        (2, 101) => "Country",
        (2, 105) => "Headline",
        (2, 116) => "CopyrightNotice",
        (2, 120) => "Caption-Abstract",
        (2, 122) => "Writer-Editor",
        _ => return None,
    })
}

/// `Photoshop/IPTC, 812 bytes: By-line "...", Caption-Abstract "..." (+thumbnail)`
pub fn photoshop(payload: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let body = payload.strip_prefix(b"Photoshop 3.0\0").unwrap_or(payload);
    let mut pos = 0;
    // 8BIM resources: signature, id, pascal name padded to even, size, data padded to even.
    while body.get(pos..pos + 4) == Some(b"8BIM") {
        let Some(id) = body
            .get(pos + 4..pos + 6)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
        else {
            break;
        };
        let name_len = *body.get(pos + 6).unwrap_or(&0) as usize;
        let name_total = (name_len + 2) & !1;
        let size_at = pos + 6 + name_total;
        let Some(size) = body
            .get(size_at..size_at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            break;
        };
        let data_start = size_at + 4;
        let Some(data) = data_start
            .checked_add(size)
            .and_then(|e| body.get(data_start..e))
        else {
            break;
        };
        match id {
            0x0404 => parts.extend(iptc_values(data)),
            0x0409 | 0x040C => parts.push("thumbnail".to_string()),
            _ => {}
        }
        pos = data_start + ((size + 1) & !1);
    }
    let mut s = format!("Photoshop/IPTC, {} bytes", payload.len());
    if !parts.is_empty() {
        s.push_str(": ");
        s.push_str(&parts.into_iter().take(6).collect::<Vec<_>>().join(", "));
    }
    s
}

fn iptc_values(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.get(pos) == Some(&0x1C) {
        let (Some(&rec), Some(&ds)) = (data.get(pos + 1), data.get(pos + 2)) else {
            break;
        };
        let Some(len) = data
            .get(pos + 3..pos + 5)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            break;
        };
        if len & 0x8000 != 0 {
            break; // extended length: rare, not worth describing
        }
        let Some(value) = data.get(pos + 5..pos + 5 + len) else {
            break;
        };
        if let Some(name) = iptc_name(rec, ds) {
            out.push(format!(
                "{name} \"{}\"",
                short_value(&String::from_utf8_lossy(value), 40)
            ));
        }
        pos += 5 + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptc_byline_is_named() {
        let mut p = b"Photoshop 3.0\08BIM\x04\x04\0\0".to_vec();
        let iptc = b"\x1C\x02\x50\x00\x04Jane";
        p.extend_from_slice(&(iptc.len() as u32).to_be_bytes());
        p.extend_from_slice(iptc);
        assert!(
            photoshop(&p).contains("By-line \"Jane\""),
            "{}",
            photoshop(&p)
        );
    }

    #[test]
    fn xmp_properties_are_listed() {
        let x = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:RDF><rdf:Description dc:format=\"a\"><dc:creator>J</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>";
        let d = xmp(x);
        assert!(d.contains("dc:creator") && d.contains("dc:format"), "{d}");
    }

    #[test]
    fn hostile_packets_are_read_in_bounded_pieces() {
        // Quadratic scanning made 400 KB of this take 14 s; 4 MB would hang.
        let attrs = b" a:b=\"".repeat(700_000);
        assert!(xmp(&attrs).contains("a:b"));
        let opens = vec![b'<'; 4_000_000];
        assert!(xmp(&opens).starts_with("XMP packet, 4000000 bytes"));
    }
}
