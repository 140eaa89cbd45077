//! `GET /prefix?list` and `?unlinked`: keys with the prefix, in key order,
//! as `{"next":"","keys":[...]}`. With `limit`, `next` is the first key not
//! returned (pass it back as `start`). More than a million keys without a
//! limit is a 413.

use std::collections::HashSet;

use http1::{response, Answer, Conn};

use crate::error::MasterError;
use crate::front::request::Req;
use crate::index::Index;
use crate::meta;
use crate::record::Record;

const MAX_KEYS: usize = 1_000_000;

pub async fn serve(
    conn: &mut Conn,
    req: &Req<'_>,
    unlinked: bool,
    start: &[u8],
    limit: usize,
) -> Result<Answer, MasterError> {
    let store = req.store;
    // On the blocking pool: a listing of many keys takes a while, and each
    // page waits for the index lock; the runtime thread serves on meanwhile.
    let (prefix, start) = (req.key.to_vec(), start.to_vec());
    let (next, keys) = store
        .blocking("the listing", move |index| {
            collect(index, &prefix, &start, unlinked, limit)
        })
        .await?;
    let body = list_json(&next, &keys);
    let out = &mut conn.wbuf;
    let head = req.start(out, 200);
    response::header(out, "Content-Type", b"application/json");
    Ok(req.finish(head, out, &body))
}

/// Keys, back to back in one buffer: a listing allocates per page, not per
/// key (the keys are gathered under the index lock).
#[derive(Default)]
struct Keys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Keys {
    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }
}

/// The keys to list, and the `next` to give.
fn collect(
    index: &Index,
    prefix: &[u8],
    start: &[u8],
    unlinked: bool,
    limit: usize,
) -> Result<(Vec<u8>, Keys), MasterError> {
    let mut keys = Keys::default();
    let mut next = Vec::new();
    let mut too_many = false;
    let in_flight = if unlinked {
        writes_in_flight(index, prefix)?
    } else {
        HashSet::new()
    };
    index.scan(prefix, start, |k, v| {
        if Record::is_deleted_raw(v) != unlinked || in_flight.contains(k) {
            return true;
        }
        if keys.len() > MAX_KEYS {
            too_many = true;
            return false;
        }
        if limit > 0 && keys.len() == limit {
            next = k.to_vec();
            return false;
        }
        keys.push(k);
        true
    })?;
    if too_many {
        return Err(MasterError::TooManyKeys);
    }
    Ok((next, keys))
}

/// Keys with the prefix whose soft record is a PUT's in flight (or one a
/// crash cut off): not unlinked, so not listed as such.
fn writes_in_flight(index: &Index, prefix: &[u8]) -> Result<HashSet<Vec<u8>>, MasterError> {
    let mut found = HashSet::new();
    index.scan(&meta::intent_key(prefix), b"", |k, v| {
        if meta::decode::<meta::Intent>(k, v).is_ok_and(|i| i.hides_record()) {
            found.insert(meta::key_of_intent(k).to_vec());
        }
        true
    })?;
    Ok(found)
}

/// The original's field order: `next`, then `keys`.
fn list_json(next: &[u8], keys: &Keys) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.bytes.len() + 4 * keys.len() + next.len() + 24);
    out.extend_from_slice(b"{\"next\":");
    json_string(&mut out, next);
    out.extend_from_slice(b",\"keys\":[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(&mut out, k);
    }
    out.extend_from_slice(b"]}");
    out
}

/// `s` as a JSON string; bytes that are not UTF-8 become U+FFFD, as the
/// original's encoder makes them.
fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    let plain = |&b: &u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
    if s.iter().all(plain) {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let text = String::from_utf8_lossy(s);
    let quoted = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".into());
    out.extend_from_slice(quoted.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::{list_json, Keys};

    #[test]
    fn json_shape() {
        let mut keys = Keys::default();
        for k in [&b"/a\"x"[..], b"/ab", b"/\xff\n"] {
            keys.push(k);
        }
        let body = list_json(b"/b", &keys);
        let want = "{\"next\":\"/b\",\"keys\":[\"/a\\\"x\",\"/ab\",\"/\u{fffd}\\n\"]}";
        assert_eq!(String::from_utf8(body).unwrap(), want);
        assert_eq!(
            list_json(b"", &Keys::default()),
            br#"{"next":"","keys":[]}"#
        );
    }
}
