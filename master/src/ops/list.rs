//! `GET /prefix?list` and `?unlinked`: keys with the prefix, in key order,
//! as `{"next":"","keys":[...]}`. With `limit`, `next` is the first key not
//! returned (pass it back as `start`). More than a million keys without a
//! limit is a 413.

use http1::{response, Conn};

use crate::error::MasterError;
use crate::front::request::Req;
use crate::index::Index;
use crate::state::Local;

const MAX_KEYS: usize = 1_000_000;

pub async fn serve(
    local: &Local,
    conn: &mut Conn,
    req: &Req<'_>,
    unlinked: bool,
    start: &[u8],
    limit: usize,
) -> Result<(), MasterError> {
    // On the blocking pool: a listing of many keys takes a while, and each
    // page waits for the index lock; the runtime thread serves on meanwhile.
    let app = local.app.clone();
    let (prefix, start) = (req.key.to_vec(), start.to_vec());
    let listed =
        monoio::spawn_blocking(move || collect(&app.index, &prefix, &start, unlinked, limit))
            .await
            .map_err(|_| MasterError::Pool("the listing"))?;
    let (next, keys) = listed?;
    let body = list_json(&next, &keys);
    let out = &mut conn.wbuf;
    req.start(out, 200);
    response::header(out, "Content-Type", b"application/json");
    req.finish(out, &body);
    Ok(())
}

/// The keys to list, and the `next` to give.
fn collect(
    index: &Index,
    prefix: &[u8],
    start: &[u8],
    unlinked: bool,
    limit: usize,
) -> Result<(String, Vec<String>), MasterError> {
    let mut keys: Vec<String> = Vec::new();
    let mut next = String::new();
    let mut too_many = false;
    index.scan(prefix, start, |k, v| {
        if v.starts_with(b"DELETED") != unlinked {
            return true;
        }
        if keys.len() > MAX_KEYS {
            too_many = true;
            return false;
        }
        if limit > 0 && keys.len() == limit {
            next = String::from_utf8_lossy(k).into_owned();
            return false;
        }
        keys.push(String::from_utf8_lossy(k).into_owned());
        true
    })?;
    if too_many {
        return Err(MasterError::TooManyKeys);
    }
    Ok((next, keys))
}

/// The original's field order: `next`, then `keys`.
fn list_json(next: &str, keys: &[String]) -> Vec<u8> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = format!("{{\"next\":{},\"keys\":[", quote(next));
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(k));
    }
    out.push_str("]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_shape() {
        let body = super::list_json("/b", &["/a\"x".into(), "/ab".into()]);
        assert_eq!(body, br#"{"next":"/b","keys":["/a\"x","/ab"]}"#);
        assert_eq!(super::list_json("", &[]), br#"{"next":"","keys":[]}"#);
    }
}
