//! One folder's listing read as its lines arrive (nginx's JSON autoindex,
//! or volume-uring's recursive listing), and which key a file holds.

use base64::Engine;

use crate::client::{ClientError, VolumeClient};
use crate::placement::key2path;

/// Listings are read in pieces of this size (nginx's are mostly small).
const READ_CHUNK: usize = 32 * 1024;
/// Folder listings larger than this fail (nginx's are whole JSON documents).
const MAX_LISTING: u64 = 256 << 20;

/// One listing entry: a path under the listed folder, whether it is a
/// folder, and the md5 a volume kept.
pub struct Entry {
    pub path: String,
    pub folder: bool,
    pub md5: Option<String>,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
}

/// Lists a folder, handing each entry to `each` as its line arrives (a
/// volume's recursive listing can name millions of files); the volume root
/// is asked for a recursive listing first.
pub(super) async fn list(
    client: &VolumeClient,
    folder: &super::crawl::Folder,
    mut each: impl FnMut(Entry),
) -> Result<(), ClientError> {
    let url = if folder.rel.is_empty() && folder.sv.is_empty() {
        "/?recursive".to_string()
    } else {
        format!(
            "/{}{}{}/",
            folder.sv,
            if folder.sv.is_empty() { "" } else { "/" },
            folder.rel
        )
        .replace("//", "/")
    };
    let mut download = client.start_get(&folder.host, &url).await?;
    let reply = download.reply();
    if reply.status != 200 {
        return Err(ClientError::new(
            &folder.host,
            format!("answered {} to GET {url}", reply.status),
        ));
    }
    let recursive = reply.recursive_listing;
    // One buffer for the whole listing: complete lines are parsed out of
    // its front, the rest waits for more.
    let mut pending: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut total = 0u64;
    loop {
        if pending.capacity() - pending.len() < READ_CHUNK / 2 {
            pending.reserve(READ_CHUNK);
        }
        let before = pending.len();
        let (res, buf) = download.read(pending).await;
        pending = buf;
        if res? == 0 {
            break;
        }
        total += (pending.len() - before) as u64;
        if !recursive && total > MAX_LISTING {
            return Err(ClientError::new(
                &folder.host,
                format!("listing of {url} is too large"),
            ));
        }
        let cut = pending
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        pending[..cut]
            .split(|&c| c == b'\n')
            .filter_map(|l| parse_line(l, recursive))
            .for_each(&mut each);
        pending.drain(..cut);
    }
    parse_line(&pending, recursive).into_iter().for_each(each);
    download.done();
    Ok(())
}

/// One line of a listing (nginx's and ours put one entry per line).
fn parse_line(line: &[u8], recursive: bool) -> Option<Entry> {
    let line = line.trim_ascii();
    let line = line.strip_suffix(b",").unwrap_or(line);
    if !line.starts_with(b"{") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let path = v.get("name")?.as_str()?.to_string();
    let folder = v.get("type")?.as_str()? == "directory";
    let md5 = v
        .get("md5")
        .and_then(|m| m.as_str())
        .map(str::to_ascii_lowercase);
    if recursive && folder {
        return None;
    }
    let size = v.get("size").and_then(|s| s.as_u64()).unwrap_or_default();
    let mtime = v
        .get("mtime")
        .and_then(|m| m.as_str())
        .and_then(|m| crate::time::parse_http_date(m.as_bytes()))
        .unwrap_or_default();
    Some(Entry {
        path,
        folder,
        md5,
        size,
        mtime,
    })
}

pub(super) fn is_hex2(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn is_subvolume(s: &str) -> bool {
    s.len() == 4 && s.starts_with("sv") && is_hex2(&s[2..])
}

pub(super) fn md5_bytes(hex: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The key a file at `xx/yy/name` under a (sub)volume root holds, if
/// `key2path` puts that key exactly there.
pub(super) fn key_of(rel: &str) -> Option<Vec<u8>> {
    let (xx, rest) = rel.split_once('/')?;
    let (yy, name) = rest.split_once('/')?;
    if !is_hex2(xx) || !is_hex2(yy) {
        return None;
    }
    let decodes_here = |name: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(name)
            .ok()?;
        (key2path(&key) == format!("/{xx}/{yy}/{name}")).then_some(key)
    };
    decodes_here(name).or_else(|| {
        // A name with `//` (base64 of some non-ASCII keys) is stored with
        // the slashes merged, by nginx and us alike: try the doubled forms.
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() < 2 || parts.len() > 7 {
            return None;
        }
        (0..3usize.pow(parts.len() as u32 - 1)).find_map(|mut pick| {
            let mut candidate = parts[0].to_string();
            for part in &parts[1..] {
                candidate.push_str(&"/".repeat(pick % 3 + 1));
                candidate.push_str(part);
                pick /= 3;
            }
            candidate
                .len()
                .is_multiple_of(4)
                .then(|| decodes_here(&candidate))
                .flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_keys() {
        assert_eq!(key_of("5d/41/aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(key_of("27/6f/Lz8/Pw=="), Some(b"/???".to_vec()));
        assert_eq!(key_of("5d/42/aGVsbG8="), None, "in the wrong folder");
        assert_eq!(key_of("body_temp/0000000001"), None);
        assert_eq!(key_of("5d/41/not base64"), None);
        assert!(is_subvolume("sv0A") && !is_subvolume("sv1") && !is_subvolume("5d"));
        // A base64 `//` (only bytes that are not UTF-8 make one) is stored
        // merged into one `/`.
        let key = b"/\xff\xff";
        let path = key2path(key);
        assert!(path[7..].contains("//"), "{path}");
        let merged = path[1..].replace("//", "/");
        assert_eq!(key_of(&merged), Some(key.to_vec()));
    }

    #[test]
    fn listing_lines() {
        let nginx =
            br#"{ "name":"Lz8", "type":"directory", "mtime":"Tue, 24 Nov 2026 05:07:20 GMT" },"#;
        let e = parse_line(nginx, false).unwrap();
        assert_eq!((e.path.as_str(), e.folder, e.md5), ("Lz8", true, None));
        let ours = br#"{ "name":"sv01/5d/41/aGVsbG8=", "type":"file", "mtime":"x", "size":5, "md5":"5D41402ABC4B2A76B9719D911017C592" }"#;
        let e = parse_line(ours, true).unwrap();
        assert_eq!(e.md5.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert!(parse_line(b"[", false).is_none() && parse_line(b"]", true).is_none());
    }
}
