//! Method and query → the operation a request asks for, as the original
//! routes them: any query makes it a query operation (GET only, `list` or
//! `unlinked`, anything else 403); otherwise the method decides.

use http1::percent;
use http1::{Method, RequestHead};

use crate::error::MasterError;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Get,
    Head,
    Put,
    Delete,
    Unlink,
    Rebalance,
    List {
        unlinked: bool,
        start: Vec<u8>,
        limit: usize,
    },
}

/// Decodes the key (the URL path, percent-decoded, leading `/` kept) into
/// `key` and returns the operation.
pub fn route(head: &RequestHead, key: &mut Vec<u8>) -> Result<Route, MasterError> {
    percent::decode(head.path(), key).map_err(bad_escape)?;
    // A query makes a GET a query operation; on other methods the original
    // ignores it, and so do we.
    if let Some(query) = head
        .query()
        .filter(|q| !q.is_empty() && head.method == Method::Get)
    {
        return list_op(query);
    }
    Ok(match head.method {
        Method::Get => Route::Get,
        Method::Head => Route::Head,
        Method::Put => Route::Put,
        Method::Delete => Route::Delete,
        Method::Other => match head.method_name() {
            "UNLINK" => Route::Unlink,
            "REBALANCE" => Route::Rebalance,
            _ => return Err(MasterError::MethodNotAllowed),
        },
        _ => return Err(MasterError::MethodNotAllowed),
    })
}

fn bad_escape(_: percent::BadEscape) -> MasterError {
    MasterError::BadRequest("invalid URL escape".into())
}

fn list_op(query: &[u8]) -> Result<Route, MasterError> {
    let operation = query.split(|&c| c == b'&').next().unwrap_or_default();
    let unlinked = match operation {
        b"list" => false,
        b"unlinked" => true,
        _ => return Err(MasterError::Forbidden),
    };
    let (mut start, mut limit) = (Vec::new(), 0usize);
    for (name, value) in percent::query_pairs(query) {
        match name {
            b"start" => percent::decode_form(value, &mut start).map_err(bad_escape)?,
            b"limit" => limit = parse_limit(value)?,
            _ => {}
        }
    }
    Ok(Route::List {
        unlinked,
        start,
        limit,
    })
}

/// Like Go's `strconv.Atoi`; empty, zero or negative means no limit.
fn parse_limit(value: &[u8]) -> Result<usize, MasterError> {
    if value.is_empty() {
        return Ok(0);
    }
    let n: i64 = std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| MasterError::BadRequest("limit must be an integer".into()))?;
    Ok(if n <= 0 { 0 } else { n as usize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http1::request::{self, HeadLimits};

    fn route_of(raw: &str) -> (Result<Route, MasterError>, Vec<u8>) {
        let mut h = RequestHead::default();
        request::parse(raw.as_bytes(), &mut h, &HeadLimits::default())
            .unwrap()
            .unwrap();
        let mut key = Vec::new();
        let op = route(&h, &mut key);
        (op, key)
    }

    #[test]
    fn methods_and_keys() {
        let (op, key) = route_of("GET /a%20b+c%2F%3F HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            (op.unwrap(), key.as_slice()),
            (Route::Get, &b"/a b+c/?"[..])
        );
        assert_eq!(
            route_of("UNLINK /k HTTP/1.1\r\nHost: x\r\n\r\n").0.unwrap(),
            Route::Unlink
        );
        assert_eq!(
            route_of("REBALANCE /k HTTP/1.1\r\nHost: x\r\n\r\n")
                .0
                .unwrap(),
            Route::Rebalance
        );
        assert!(matches!(
            route_of("POST /k HTTP/1.1\r\nHost: x\r\n\r\n").0,
            Err(MasterError::MethodNotAllowed)
        ));
        assert!(matches!(
            route_of("GET /k%zz HTTP/1.1\r\nHost: x\r\n\r\n").0,
            Err(MasterError::BadRequest(_))
        ));
        assert_eq!(
            route_of("GET /k? HTTP/1.1\r\nHost: x\r\n\r\n").0.unwrap(),
            Route::Get,
            "an empty query is no query"
        );
    }

    #[test]
    fn queries() {
        let (op, key) =
            route_of("GET /pre?list&limit=10&start=%2Fpre+x HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(key, b"/pre");
        assert_eq!(
            op.unwrap(),
            Route::List {
                unlinked: false,
                start: b"/pre x".to_vec(),
                limit: 10
            }
        );
        let (op, _) = route_of("GET /?unlinked&limit=-1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            op.unwrap(),
            Route::List {
                unlinked: true,
                start: vec![],
                limit: 0
            }
        );
        assert!(matches!(
            route_of("GET /?list&limit=ten HTTP/1.1\r\nHost: x\r\n\r\n").0,
            Err(MasterError::BadRequest(_))
        ));
        let (op, _) = route_of("GET /?list&limit= HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            op.unwrap(),
            Route::List {
                unlinked: false,
                start: vec![],
                limit: 0
            },
            "as Go: empty is none"
        );
        assert!(matches!(
            route_of("GET /?delete HTTP/1.1\r\nHost: x\r\n\r\n").0,
            Err(MasterError::Forbidden)
        ));
        assert_eq!(
            route_of("PUT /k?list HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n")
                .0
                .unwrap(),
            Route::Put,
            "as the original: a query on a PUT is ignored"
        );
        assert_eq!(
            route_of("UNLINK /k?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                .0
                .unwrap(),
            Route::Unlink
        );
    }
}
