//! `GET /folder/`: the folder's entries as nginx's `autoindex_format json`
//! writes them, byte for byte — folders first, then files, each group in
//! byte order; names starting with `.` (our temporary files among them)
//! left out; `type` is `directory`, `file` or `other`, following symlinks.
//! `GET /folder/?recursive` (ours only) lists every file below, for rebuild,
//! walked by threads of its own (`walk`), in no particular order.

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use http1::{chunked, response, Answer, Conn, HttpError, Method};

use crate::error::VolumeError;
use crate::front::request::Request;
use crate::ops::walk::{self, Walk};

/// The body goes out in chunks of about this size.
const CHUNK: usize = 64 * 1024;

pub struct Entry {
    pub name: Vec<u8>,
    pub kind: FileType,
    pub mtime: i64,
    pub size: u64,
}

/// Reads and sorts the visible entries of an open folder.
pub fn read_entries(dir: &OwnedFd) -> Result<Vec<Entry>, VolumeError> {
    let mut entries = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        let stat = match rustix::fs::statat(dir, name, AtFlags::empty()) {
            Ok(s) => s,
            Err(_) => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        entries.push(Entry {
            name: name.to_bytes().to_vec(),
            kind: FileType::from_raw_mode(stat.st_mode),
            mtime: stat.st_mtime,
            size: stat.st_size as u64,
        });
    }
    entries.sort_by(|a, b| {
        let (a_dir, b_dir) = (a.kind == FileType::Directory, b.kind == FileType::Directory);
        b_dir.cmp(&a_dir).then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

/// `HEAD /` says how full the volume is, for the master's health checks
/// and status page: `X-Volume-Disk-Total`, `X-Volume-Disk-Free` (bytes)
/// and `X-Volume-Files`.
fn write_space(out: &mut Vec<u8>, req: &Request<'_>) {
    if let Ok(space) = crate::store::place::space(req.ctx.root.path()) {
        response::header_num(out, "X-Volume-Disk-Total", space.total);
        response::header_num(out, "X-Volume-Disk-Free", space.free);
    }
    let files = crate::admin::metrics::METRICS.files.get().max(0) as u64;
    response::header_num(out, "X-Volume-Files", files);
}

/// Appends one entry as nginx formats it.
pub fn push_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(b"{ \"name\":\"");
    push_json_escaped(out, &e.name);
    out.extend_from_slice(match e.kind {
        FileType::Directory => b"\", \"type\":\"directory\"".as_slice(),
        FileType::RegularFile => b"\", \"type\":\"file\"".as_slice(),
        _ => b"\", \"type\":\"other\"".as_slice(),
    });
    out.extend_from_slice(b", \"mtime\":\"");
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime.max(0) as u64);
    out.extend_from_slice(httpdate::fmt_http_date(when).as_bytes());
    out.push(b'"');
    if e.kind == FileType::RegularFile {
        out.extend_from_slice(b", \"size\":");
        response::push_num(out, e.size);
    }
    out.extend_from_slice(b" }");
}

/// JSON string escaping of raw bytes, as nginx does it: quotes, backslashes
/// and control characters; other bytes pass through unchanged.
fn push_json_escaped(out: &mut Vec<u8>, name: &[u8]) {
    for &c in name {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
            _ => out.push(c),
        }
    }
}

pub async fn serve(
    conn: &mut Conn,
    req: &Request<'_>,
    dir: OwnedFd,
) -> Result<Answer, VolumeError> {
    let recursive = req
        .head
        .query()
        .is_some_and(|q| q.split(|&c| c == b'&').any(|p| p == b"recursive"));
    if recursive && !req.head.http10 {
        return serve_recursive(conn, req, dir).await;
    }
    let is_head = req.head.method == Method::Head;
    let entries = if is_head {
        Vec::new()
    } else {
        read_entries(&dir)?
    };
    drop(dir);
    // HTTP/1.0 has no chunked encoding: the body ends with the connection.
    let is_chunked = !req.head.http10;
    let keep_alive = req.keep_alive() && is_chunked;
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    response::header(out, "Content-Type", b"application/json");
    if is_chunked {
        response::header(out, "Transfer-Encoding", b"chunked");
    }
    if is_head && req.rel.is_empty() {
        write_space(out, req);
    }
    let answer = head.end(out, keep_alive, req.head.http10);
    if is_head {
        return Ok(answer);
    }
    let mut body = Vec::with_capacity(CHUNK + 512);
    body.extend_from_slice(b"[\r\n");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",\r\n");
        }
        push_entry(&mut body, entry);
        if body.len() >= CHUNK {
            push_body(conn, &body, is_chunked);
            body.clear();
            conn.flush().await?;
        }
    }
    body.extend_from_slice(if entries.is_empty() {
        b"]".as_slice()
    } else {
        b"\r\n]".as_slice()
    });
    push_body(conn, &body, is_chunked);
    if is_chunked {
        chunked::push_last(&mut conn.wbuf, &[]);
    }
    Ok(answer)
}

/// `GET /folder/?recursive`: every file below the folder, streamed, one
/// entry per line, each named by its path under the folder and carrying its
/// md5 when one is kept (`"md5":"..."`). Answers carry `X-Mkv-Listing:
/// recursive`; nginx ignores the query and lists one folder, without that
/// header, so a client can tell which it got. Symlinks are not followed.
async fn serve_recursive(
    conn: &mut Conn,
    req: &Request<'_>,
    dir: OwnedFd,
) -> Result<Answer, VolumeError> {
    let permit = walk::Permit::take().ok_or(VolumeError::Busy(
        "too many recursive listings at once; retry",
    ))?;
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    response::header(out, "Content-Type", b"application/json");
    response::header(out, "Transfer-Encoding", b"chunked");
    response::header(out, "X-Mkv-Listing", b"recursive");
    let answer = req.finish(head, out);
    if req.head.method == Method::Head {
        return Ok(answer);
    }
    // Errors from here on come after the head went out: the connection can
    // only close, and the client sees the listing cut off.
    let cut = |e: String| VolumeError::Http(HttpError::Io(std::io::Error::other(e)));
    let mut walk = Walk::start(dir, permit).map_err(|e| cut(e.to_string()))?;
    let mut body = Vec::with_capacity(CHUNK + 1024);
    body.push(b'[');
    let mut first = true;
    while let Some(piece) = walk.next().await {
        let piece = piece.map_err(cut)?;
        // Each piece is `,\r\n{entry},\r\n{entry}...`.
        body.extend_from_slice(if first { &piece[1..] } else { &piece });
        first = false;
        if body.len() >= CHUNK {
            push_body(conn, &body, true);
            body.clear();
            conn.flush().await?;
        }
    }
    body.extend_from_slice(if first {
        b"]".as_slice()
    } else {
        b"\r\n]".as_slice()
    });
    push_body(conn, &body, true);
    chunked::push_last(&mut conn.wbuf, &[]);
    Ok(answer)
}

/// The regular files of `folder`; its subfolders are pushed on `folders`.
/// The folder's own descriptor is read (it is read once), and an entry the
/// listing says is a folder is opened without a `stat`: a volume has many
/// more folders than files (10 subvolumes of 65,536 each), and each `stat`,
/// `open` and `close` saved counts.
pub(super) fn read_below(
    folder: &OwnedFd,
    prefix: &[u8],
    folders: &mut Vec<(OwnedFd, Vec<u8>)>,
) -> Result<Vec<Entry>, VolumeError> {
    let mut files = Vec::new();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut reader = rustix::fs::RawDir::new(folder, &mut buf);
    while let Some(entry) = reader.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.first() == Some(&b'.') {
            continue;
        }
        // The kind `getdents` gives, but a file's size and time, and any
        // kind it does not know, take a `stat`.
        let (kind, stat) = match entry.file_type() {
            FileType::Directory => (FileType::Directory, None),
            FileType::RegularFile | FileType::Unknown => {
                match rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => (FileType::from_raw_mode(stat.st_mode), Some(stat)),
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        match (kind, stat) {
            (FileType::Directory, _) => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                if let Ok(fd) = rustix::fs::openat(folder, name, flags, Mode::empty()) {
                    let mut path = prefix.to_vec();
                    path.extend_from_slice(name);
                    path.push(b'/');
                    folders.push((fd, path));
                }
            }
            (FileType::RegularFile, Some(stat)) => files.push(Entry {
                name: name.to_vec(),
                kind: FileType::RegularFile,
                mtime: stat.st_mtime,
                size: stat.st_size as u64,
            }),
            _ => {}
        }
    }
    Ok(files)
}

/// A file's entry, named by its path under the listed folder, with its md5.
pub(super) fn push_file_with_md5(out: &mut Vec<u8>, folder: &OwnedFd, prefix: &[u8], e: &Entry) {
    let mut named = Entry {
        name: prefix.to_vec(),
        kind: e.kind,
        mtime: e.mtime,
        size: e.size,
    };
    named.name.extend_from_slice(&e.name);
    push_entry(out, &named);
    // Read by its name in the open folder: `lgetxattr` by path walks the
    // path from the root for every file.
    let md5 = crate::store::xattr_at::read_sums_at(folder, &e.name).md5;
    if let Some(md5) = md5 {
        out.truncate(out.len() - 2);
        out.extend_from_slice(b", \"md5\":\"");
        out.extend_from_slice(md5.as_bytes());
        out.extend_from_slice(b"\" }");
    }
}

fn push_body(conn: &mut Conn, data: &[u8], is_chunked: bool) {
    if is_chunked {
        chunked::push_chunk(&mut conn.wbuf, data);
    } else {
        conn.wbuf.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_like_nginx() {
        let mut out = Vec::new();
        let dir = Entry {
            name: b"5d".to_vec(),
            kind: FileType::Directory,
            mtime: 0x6b0537d0,
            size: 4096,
        };
        push_entry(&mut out, &dir);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{ "name":"5d", "type":"directory", "mtime":"Tue, 24 Nov 2026 07:08:00 GMT" }"#
        );
        out.clear();
        let file = Entry {
            name: b"q\"\\\x01".to_vec(),
            kind: FileType::RegularFile,
            mtime: 0x6b0537d0,
            size: 5,
        };
        push_entry(&mut out, &file);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{ "name":"q\"\\\u0001", "type":"file", "mtime":"Tue, 24 Nov 2026 07:08:00 GMT", "size":5 }"#
        );
    }
}
