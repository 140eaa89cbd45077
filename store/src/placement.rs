//! Where a key lives, bit for bit as the original computes it
//! (docs/index-and-placement.md, whose vectors the tests below pin).
//!
//! `key2path` names the file: two levels of folders from the key's md5, then
//! the key in standard base64 (whose `/` makes a nested folder on a volume).
//! `key2volume` ranks the volumes by `md5(key ++ volume)` — stable in the
//! volume's name, not its position, so adding a volume moves only the keys
//! that now rank it highest — and picks a subvolume from the score's last
//! four bytes.

use base64::Engine;
use md5::{Digest, Md5};

pub fn key2path(key: &[u8]) -> String {
    let digest = Md5::digest(key);
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    format!("/{:02x}/{:02x}/{b64}", digest[0], digest[1])
}

/// Why a key cannot be stored as a file on a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unstorable {
    /// Its base64 name would not fit in a file name (255 bytes).
    TooLong { name_len: usize },
    /// Its base64 name would begin or end with `/`: a folder, which nginx
    /// and volume-uring both refuse to PUT (a key of length divisible by 3
    /// whose last byte's low six bits are all set: `?`, DEL, or a UTF-8
    /// character ending in 0xBF or 0xFF).
    FolderName(String),
}

impl std::fmt::Display for Unstorable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unstorable::TooLong { name_len } => write!(
                f,
                "key too long: its volume file name would be {name_len} bytes (the limit is 255)"
            ),
            Unstorable::FolderName(name) => write!(
                f,
                "this key cannot be stored: its volume file name ({name}, the key in base64, as the original names files) would begin or end with '/', which makes it a folder"
            ),
        }
    }
}

/// Why `key` cannot be stored as a file on a volume, if it cannot.
pub fn unstorable(key: &[u8]) -> Option<Unstorable> {
    let name_len = key.len().div_ceil(3) * 4;
    if name_len > 255 {
        return Some(Unstorable::TooLong { name_len });
    }
    let name = base64::engine::general_purpose::STANDARD.encode(key);
    (name.starts_with('/') || name.ends_with('/')).then_some(Unstorable::FolderName(name))
}

/// The `count` replicas of `key`, best first.
pub fn key2volume(key: &[u8], volumes: &[String], count: usize, subvolumes: u32) -> Vec<String> {
    ranked(key, volumes, count, subvolumes)
        .into_iter()
        .map(|(v, sv)| match sv {
            None => volumes[v].clone(),
            Some(sv) => format!("{}/sv{sv:02X}", volumes[v]),
        })
        .collect()
}

/// `key2volume` as places: each replica's position in `volumes` and its
/// subvolume (`None` when there is one subvolume).
pub fn ranked(
    key: &[u8],
    volumes: &[String],
    count: usize,
    subvolumes: u32,
) -> Vec<(usize, Option<u32>)> {
    let mut scored: Vec<([u8; 16], usize)> = volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut h = Md5::new();
            h.update(key);
            h.update(v.as_bytes());
            (h.finalize().into(), i)
        })
        .collect();
    // Highest score first; a stable sort keeps ties in the given order.
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    scored
        .into_iter()
        .take(count)
        .map(|(score, i)| {
            let n = u32::from_be_bytes([score[12], score[13], score[14], score[15]]);
            (i, (subvolumes != 1).then(|| n % subvolumes))
        })
        .collect()
}

/// Whether a key's replicas are not where `key2volume` now puts them.
pub fn needs_rebalance(replicas: &[String], wanted: &[String]) -> bool {
    replicas != wanted
}

/// The order in which reads try a record's replicas: a random rotation,
/// then a random direction, so that every order of up to three replicas is
/// equally likely and load spreads over them (no allocation). One rule for
/// GET and HEAD of both APIs and for CopyObject's source; `rand(n)` is a
/// random number below `n`.
pub fn read_order(n: usize, rand: impl Fn(u32) -> u32) -> impl Iterator<Item = usize> {
    let offset = if n > 1 { rand(n as u32) as usize } else { 0 };
    let backwards = n > 2 && rand(2) == 1;
    (0..n).map(move |i| {
        if backwards {
            (offset + n - i) % n
        } else {
            (offset + i) % n
        }
    })
}

/// [`read_order`] with the thread's random numbers, over `replicas`.
pub fn replicas_in_read_order(replicas: &[String]) -> impl Iterator<Item = &String> {
    read_order(replicas.len(), monoio::utils::thread_rng_n).map(move |i| &replicas[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key2path_vectors() {
        assert_eq!(key2path(b"hello"), "/5d/41/aGVsbG8=");
        assert_eq!(key2path(b"helloworld"), "/fc/5e/aGVsbG93b3JsZA==");
        assert_eq!(key2path(b"/???"), "/27/6f/Lz8/Pw==");
        for key in [&b"hello"[..], b"helloworld", b"/???", b"", b"ab"] {
            assert!(unstorable(key).is_none(), "{key:?}");
        }
    }

    #[test]
    fn read_orders_are_every_order() {
        use std::collections::HashSet;
        let mut seen = HashSet::new();
        for offset in 0..3 {
            for backwards in 0..2 {
                let rand = |n: u32| if n == 2 { backwards } else { offset % n };
                let order: Vec<usize> = read_order(3, rand).collect();
                let mut sorted = order.clone();
                sorted.sort();
                assert_eq!(sorted, [0, 1, 2], "a permutation");
                seen.insert(order);
            }
        }
        assert_eq!(seen.len(), 6, "all six orders of three replicas");
        assert_eq!(read_order(1, |_| 0).collect::<Vec<_>>(), [0]);
        assert_eq!(read_order(0, |_| 0).count(), 0);
    }

    #[test]
    fn unstorable_keys() {
        assert!(unstorable(&[b'k'; 189]).is_none(), "252-byte name");
        assert!(unstorable(&[b'k'; 190])
            .unwrap()
            .to_string()
            .contains("256 bytes"));
        assert!(
            unstorable(b"/??11?")
                .unwrap()
                .to_string()
                .contains("Lz8/MTE/"),
            "base64 ends with /"
        );
        assert!(
            unstorable(b"\xfc\xfc\xfc").is_some(),
            "base64 begins with /"
        );
        assert!(
            unstorable(b"/???").is_none(),
            "a / inside is a nested folder, fine"
        );
    }

    #[test]
    fn key2volume_vectors() {
        let v = vols(&["larry", "moe", "curly"]);
        assert_eq!(key2volume(b"hello", &v, 1, 3), ["larry/sv00"]);
        assert_eq!(key2volume(b"helloworld", &v, 1, 3), ["curly/sv01"]);
        assert_eq!(key2volume(b"world", &v, 1, 3), ["moe/sv02"]);
        assert_eq!(key2volume(b"blah", &v, 1, 3), ["curly/sv01"]);
        assert_eq!(
            key2volume(b"hello", &v, 3, 10),
            ["larry/sv09", "curly/sv03", "moe/sv03"]
        );
        let local = vols(&[
            "localhost:3001",
            "localhost:3002",
            "localhost:3003",
            "localhost:3004",
            "localhost:3005",
        ]);
        assert_eq!(
            key2volume(b"/wehave", &local, 3, 10),
            [
                "localhost:3001/sv07",
                "localhost:3002/sv04",
                "localhost:3005/sv01"
            ]
        );
    }

    #[test]
    fn subvolumes_of_one_are_bare_volumes() {
        let v = vols(&["larry", "moe", "curly"]);
        let got = key2volume(b"hello", &v, 3, 1);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|g| v.contains(g)));
        // Stable in the volume's name, not its position.
        let mut shuffled = v.clone();
        shuffled.reverse();
        assert_eq!(
            key2volume(b"hello", &shuffled, 3, 10),
            key2volume(b"hello", &v, 3, 10)
        );
    }

    #[test]
    fn balance() {
        let a = vols(&["x/sv01", "y/sv02"]);
        assert!(!needs_rebalance(&a, &a.clone()));
        assert!(needs_rebalance(&a, &vols(&["y/sv02", "x/sv01"])));
        assert!(needs_rebalance(&a, &vols(&["x/sv01"])));
    }
}
