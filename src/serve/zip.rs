//! The ZIP the page offers after an export: its files as stored entries
//! (photos are compressed already, so deflate would only cost time), names
//! in UTF-8, and no dates (every entry says 1980-01-01 00:00, so the archive
//! carries nothing about when the photos were taken or exported).

use crate::error::{Error, Result};

/// Largest archive built (it is held in memory to be sent).
pub const MAX_ZIP: u64 = 1 << 30;

/// 1980-01-01 in MS-DOS date form; time 00:00.
const DOS_DATE: u16 = (1 << 5) | 1;

/// A ZIP holding `files` (name inside the archive, bytes), in that order.
pub fn stored(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let total: u64 = files
        .iter()
        .map(|(n, b)| b.len() as u64 + 2 * n.len() as u64 + 76)
        .sum();
    if total + 22 > MAX_ZIP || files.len() > u16::MAX as usize {
        return Err(Error::TooLarge(format!(
            "{} files, {} MB: too many for one download; open the output folder instead",
            files.len(),
            total >> 20
        )));
    }
    let mut out = Vec::with_capacity(total as usize + 22);
    let mut central = Vec::new();
    for (name, bytes) in files {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(bytes);
        let (size, name_len) = (bytes.len() as u32, name.len() as u16);
        // Local header: signature, version 2.0, UTF-8 names, stored.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out, crc, size, name_len);
        out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);
        // Central directory entry: signature, made by 2.0, then the same fields.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        common(&mut central, crc, size, name_len);
        // Extra, comment, disk, internal and external attributes.
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_size) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // this disk, the directory's disk
    let n = files.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

/// Version needed, flags, method, time, date, CRC, sizes, name length.
fn common(out: &mut Vec<u8>, crc: u32, size: u32, name_len: u16) {
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0x0800u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&DOS_DATE.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unzip_reads_it_back() {
        let files = vec![
            ("case-1/01.jpg".to_string(), b"first".to_vec()),
            ("case-1/02.jpg".to_string(), vec![7u8; 3000]),
        ];
        let zip = stored(&files).unwrap();
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.zip");
        std::fs::write(&path, &zip).unwrap();
        // An independent reader, where there is one.
        let Ok(out) = std::process::Command::new("unzip")
            .arg("-Z1")
            .arg(&path)
            .output()
        else {
            eprintln!("unzip missing: structure checked by hand only");
            assert_eq!(&zip[..4], b"PK\x03\x04");
            return;
        };
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "case-1/01.jpg\ncase-1/02.jpg\n"
        );
        let t = std::process::Command::new("unzip")
            .arg("-tq")
            .arg(&path)
            .output()
            .unwrap();
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stdout));
        let p = std::process::Command::new("unzip")
            .args(["-p"])
            .arg(&path)
            .arg("case-1/01.jpg")
            .output()
            .unwrap();
        assert_eq!(p.stdout, b"first");
    }
}
