//! One folder's listing read as its lines arrive (nginx's JSON autoindex,
//! or volume-uring's recursive listing), and which key a file holds.

use std::borrow::Cow;

use base64::Engine;
use md5::{Digest, Md5};

use crate::client::{ClientError, VolumeClient};

/// Listings are read in pieces of this size (nginx's are mostly small).
const READ_CHUNK: usize = 32 * 1024;
/// Folder listings larger than this fail (nginx's are whole JSON documents).
const MAX_LISTING: u64 = 256 << 20;

/// One listing entry: a path under the listed folder, whether it is a
/// folder, and the md5 a volume kept. The path borrows the listing's line
/// unless it had escapes.
pub struct Entry<'a> {
    pub path: Cow<'a, str>,
    pub folder: bool,
    /// The md5 a volume-uring volume kept (`None` when it sent none, or
    /// not 32 hex digits).
    pub md5: Option<[u8; 16]>,
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
    mut each: impl FnMut(Entry<'_>),
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

/// A listing line as nginx and volume-uring write it; anything else (a
/// field of another type, a repeated field) is read through `Value`.
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    md5: Option<Cow<'a, str>>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, borrow)]
    mtime: Option<Cow<'a, str>>,
}

/// One line of a listing (nginx's and ours put one entry per line).
fn parse_line(line: &[u8], recursive: bool) -> Option<Entry<'_>> {
    let line = line.trim_ascii();
    let line = line.strip_suffix(b",").unwrap_or(line);
    if !line.starts_with(b"{") {
        return None;
    }
    let Line {
        name,
        kind,
        md5,
        size,
        mtime,
    } = match serde_json::from_slice::<Line<'_>>(line) {
        Ok(typed) => typed,
        Err(_) => loose_line(line)?,
    };
    let folder = kind == "directory";
    if recursive && folder {
        return None;
    }
    Some(Entry {
        path: name,
        folder,
        md5: md5.as_deref().and_then(md5_bytes),
        size: size.unwrap_or_default(),
        mtime: mtime
            .and_then(|m| crate::time::parse_http_date(m.as_bytes()))
            .unwrap_or_default(),
    })
}

/// A line with fields of unexpected types: those are taken as absent.
fn loose_line(line: &[u8]) -> Option<Line<'static>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let text = |field: &str| {
        v.get(field)
            .and_then(|m| m.as_str())
            .map(|s| Cow::Owned(s.to_string()))
    };
    Some(Line {
        name: text("name")?,
        kind: text("type")?,
        md5: text("md5"),
        size: v.get("size").and_then(|s| s.as_u64()),
        mtime: text("mtime"),
    })
}

pub(super) fn is_hex2(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn is_subvolume(s: &str) -> bool {
    s.len() == 4 && s.starts_with("sv") && is_hex2(&s[2..])
}

/// 32 hex digits, either case, as 16 bytes.
fn md5_bytes(hex: &str) -> Option<[u8; 16]> {
    let hex = hex.as_bytes();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (b, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *b = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

/// A `key2path` folder name (two lowercase hex digits) as its byte.
fn folder_byte(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    let lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    (b.len() == 2 && b.iter().all(|&c| lower(c)))
        .then(|| (hex_digit(b[0]).unwrap_or(0) << 4) | hex_digit(b[1]).unwrap_or(0))
}

/// The key a file at `xx/yy/name` under a (sub)volume root holds, if
/// `key2path` puts that key exactly there.
pub(super) fn key_of(rel: &str) -> Option<Vec<u8>> {
    let (xx, rest) = rel.split_once('/')?;
    let (yy, name) = rest.split_once('/')?;
    let folders = [folder_byte(xx)?, folder_byte(yy)?];
    let decodes_here = |name: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(name)
            .ok()?;
        (Md5::digest(&key)[..2] == folders && encodes_to(&key, name)).then_some(key)
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

/// Whether `key`'s base64 is exactly `name` (`key2path`'s file name).
fn encodes_to(key: &[u8], name: &str) -> bool {
    let mut buf = [0u8; 512];
    match base64::engine::general_purpose::STANDARD.encode_slice(key, &mut buf) {
        Ok(len) => &buf[..len] == name.as_bytes(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(key) == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::key2path;

    #[test]
    fn files_and_keys() {
        assert_eq!(key_of("5d/41/aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(key_of("27/6f/Lz8/Pw=="), Some(b"/???".to_vec()));
        assert_eq!(key_of("5d/42/aGVsbG8="), None, "in the wrong folder");
        assert_eq!(key_of("body_temp/0000000001"), None);
        assert_eq!(key_of("5d/41/not base64"), None);
        assert_eq!(
            key_of("5D/41/aGVsbG8="),
            None,
            "key2path's folders are lowercase"
        );
        assert_eq!(key_of("5d/41/aGVsbG8"), None, "unpadded");
        assert_eq!(key_of("5d/41"), None);
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
        assert_eq!((&*e.path, e.folder, e.md5), ("Lz8", true, None));
        assert_eq!(e.mtime, 1_795_496_840);
        let ours = br#"{ "name":"sv01/5d/41/aGVsbG8=", "type":"file", "mtime":"x", "size":5, "md5":"5D41402ABC4B2A76B9719D911017C592" }"#;
        let e = parse_line(ours, true).unwrap();
        let md5 = md5_bytes("5d41402abc4b2a76b9719d911017c592").unwrap();
        assert_eq!((e.md5, e.size, e.mtime), (Some(md5), 5, 0));
        assert!(matches!(e.path, Cow::Borrowed("sv01/5d/41/aGVsbG8=")));
        assert!(parse_line(b"[", false).is_none() && parse_line(b"]", true).is_none());
        assert!(parse_line(br#"{ "name":"a", "type":"directory" }"#, true).is_none());
    }

    /// Lines the typed reading refuses are read as before: fields of
    /// another type count as absent, escapes are undone, a repeated field
    /// takes its last value.
    #[test]
    fn unusual_lines() {
        let odd = br#"{ "name":"5d/41/aGVsbG8=", "type":"file", "size":"5", "md5":7, "mtime":null, "x":[1] }"#;
        let e = parse_line(odd, true).unwrap();
        assert_eq!(
            (&*e.path, e.folder, e.md5, e.size, e.mtime),
            ("5d/41/aGVsbG8=", false, None, 0, 0)
        );
        let escaped = br#"{ "name":"a\"b", "type":"file", "size":1, "size":2 }"#;
        let e = parse_line(escaped, false).unwrap();
        assert_eq!((&*e.path, e.size), ("a\"b", 2));
        assert!(parse_line(br#"{ "name":5, "type":"file" }"#, false).is_none());
        assert!(parse_line(br#"{ "type":"file" }"#, false).is_none());
        for bad in [
            "5d41402abc4b2a76b9719d911017c59",
            "5d41402abc4b2a76b9719d911017c592a",
            "5d41402abc4b2a76b9719d911017c59g",
        ] {
            assert_eq!(md5_bytes(bad), None, "{bad}");
        }
    }
}
