//! Scans over PostgreSQL: a key range (the prefix's) read a page at a time
//! in key order, each page one indexed range query; a seek starts the next
//! page at the key sought.

use super::{Pg, PAGE_ROWS};
use crate::index::core::seek_backwards;
use crate::index::{IndexError, Step};

/// The first key after every key that starts with `prefix` (None: no key
/// is after them all).
pub(in crate::index) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(in crate::index) fn scan(
    pg: &Pg,
    prefix: &[u8],
    start: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Step,
) -> Result<(), IndexError> {
    let end = prefix_end(prefix);
    let mut from = if start > prefix {
        start.to_vec()
    } else {
        prefix.to_vec()
    };
    'pages: loop {
        let rows = pg.page_blocking(from.clone(), end.clone())?;
        let full = rows.len() as i64 == PAGE_ROWS;
        for row in &rows {
            let (k, v): (&[u8], &[u8]) = (row.get(0), row.get(1));
            match f(k, v) {
                Step::Next => {}
                Step::Stop => return Ok(()),
                Step::Seek(to) if to.as_slice() > k => {
                    from = to;
                    continue 'pages;
                }
                Step::Seek(_) => return Err(seek_backwards()),
            }
        }
        let Some(last) = rows.last() else {
            return Ok(());
        };
        if !full {
            return Ok(());
        }
        // The next page starts just after the last key.
        from.clear();
        from.extend_from_slice(last.get::<_, &[u8]>(0));
        from.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_end_of_a_prefix_is_after_all_its_keys() {
        assert_eq!(prefix_end(b"/a"), Some(b"/b".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
