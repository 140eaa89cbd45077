//! The index value, byte-compatible with the original
//! (docs/index-and-placement.md):
//! `["DELETED"]["HASH" + 32 hex digits] + comma-joined replica volumes`.
//! No record at all means hard-deleted; `DELETED` means soft-deleted (an
//! UNLINK, or a PUT or DELETE in flight).

/// The mark of a soft-deleted record.
const DELETED: &[u8] = b"DELETED";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub deleted: bool,
    /// Hex md5 of the whole value, when it was computed.
    pub hash: Option<String>,
    pub volumes: Vec<String>,
}

/// Whether every byte is a hex digit, without a branch per byte: random
/// hex digits mispredict a per-byte test about a third of the time, and a
/// listing checks a thousand md5s a page.
fn all_hex(bytes: &[u8]) -> bool {
    const HEX: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            t[c] = (c as u8).is_ascii_hexdigit();
            c += 1;
        }
        t
    };
    bytes.iter().fold(true, |ok, &c| ok & HEX[c as usize])
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("index record is corrupt: {0}")]
pub struct CorruptRecord(pub &'static str);

impl Record {
    pub fn live(volumes: Vec<String>, hash: Option<String>) -> Record {
        Record {
            deleted: false,
            hash,
            volumes,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        if self.deleted {
            out.extend_from_slice(DELETED);
        }
        if let Some(h) = self.hash.as_ref().filter(|h| h.len() == 32) {
            out.extend_from_slice(b"HASH");
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(self.volumes.join(",").as_bytes());
        out
    }

    /// Whether a record is soft-deleted, without decoding it (listings and
    /// the census read every record).
    pub fn is_deleted_raw(raw: &[u8]) -> bool {
        raw.starts_with(DELETED)
    }

    /// The md5 of a record, without decoding the rest (listings read
    /// thousands).
    pub fn hash_of(raw: &[u8]) -> Result<Option<&str>, CorruptRecord> {
        let rest = raw.strip_prefix(DELETED).unwrap_or(raw);
        let Some(rest) = rest.strip_prefix(b"HASH") else {
            return Ok(None);
        };
        let hash = rest.get(..32).ok_or(CorruptRecord("short hash"))?;
        if !all_hex(hash) {
            return Err(CorruptRecord("hash is not hex"));
        }
        Ok(std::str::from_utf8(hash).ok())
    }

    pub fn decode(raw: &[u8]) -> Result<Record, CorruptRecord> {
        let text = std::str::from_utf8(raw).map_err(|_| CorruptRecord("not UTF-8"))?;
        let (deleted, rest) = match text.strip_prefix("DELETED") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (hash, rest) = match rest.strip_prefix("HASH") {
            Some(rest) => {
                let hash = rest.get(..32).ok_or(CorruptRecord("short hash"))?;
                if !all_hex(hash.as_bytes()) {
                    return Err(CorruptRecord("hash is not hex"));
                }
                (Some(hash.to_string()), &rest[32..])
            }
            None => (None, rest),
        };
        let volumes = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split(',').map(str::to_string).collect()
        };
        Ok(Record {
            deleted,
            hash,
            volumes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spec_vectors() {
        let soft = Record {
            deleted: true,
            hash: Some("5d41402abc4b2a76b9719d911017c592".into()),
            volumes: v(&["hello", "world"]),
        };
        assert_eq!(
            soft.encode(),
            b"DELETEDHASH5d41402abc4b2a76b9719d911017c592hello,world"
        );
        assert_eq!(
            Record::decode(b"DELETEDHASH5d41402abc4b2a76b9719d911017c592hello,world"),
            Ok(soft)
        );
        let bare = Record::live(v(&["hello", "world"]), None);
        assert_eq!(bare.encode(), b"hello,world");
        assert_eq!(Record::decode(b"hello,world"), Ok(bare));
    }

    #[test]
    fn original_forms() {
        let r = Record::decode(
            b"HASH022562cbfc8b12f9ae7b291a7b21f2e8localhost:3001/sv07,localhost:3005/sv04",
        )
        .unwrap();
        assert_eq!(r.hash.as_deref(), Some("022562cbfc8b12f9ae7b291a7b21f2e8"));
        assert_eq!(
            r.volumes,
            v(&["localhost:3001/sv07", "localhost:3005/sv04"])
        );
        assert!(!r.deleted);
        let r = Record::decode(b"DELETEDlocalhost:3001").unwrap();
        assert!(r.deleted && r.hash.is_none());
        assert_eq!(Record::decode(b"").unwrap().volumes, Vec::<String>::new());
        assert!(Record::decode(b"HASH1234").is_err());
        assert!(Record::decode(b"HASHzz2562cbfc8b12f9ae7b291a7b21f2e8x").is_err());
        assert!(Record::decode(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn round_trips() {
        for raw in [
            &b"a,b,c"[..],
            b"DELETEDa",
            b"HASH0123456789abcdef0123456789abcdefa:1/sv00",
        ] {
            assert_eq!(Record::decode(raw).unwrap().encode(), raw);
        }
    }

    #[test]
    fn hash_of_reads_only_the_md5() {
        let h = "0123456789abcdefABCDEF0123456789";
        for raw in [format!("HASH{h}a:1"), format!("DELETEDHASH{h}")] {
            assert_eq!(Record::hash_of(raw.as_bytes()), Ok(Some(h)));
        }
        assert_eq!(Record::hash_of(b"a:1,b:2"), Ok(None));
        assert!(Record::hash_of(b"HASH0123").is_err());
        for bad in [b'g', b'/', b':', b'@', b'`', 0x80, 0xff] {
            let mut raw = format!("HASH{h}").into_bytes();
            raw[4 + 17] = bad;
            assert_eq!(Record::hash_of(&raw), Err(CorruptRecord("hash is not hex")));
            assert!(Record::decode(&raw).is_err());
        }
    }
}
