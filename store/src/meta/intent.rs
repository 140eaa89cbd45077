//! The intent record (`w` + mkv key): a multi-step write of one key that
//! has begun and not yet committed, or that failed and left copies a
//! volume has not confirmed removed. Every write that sends bytes to a
//! volume before the index names them writes one first, synced: a PUT in
//! place, an install of a staged value (an S3 overwrite, a copy over a live
//! key, a multipart completion) and a rebalance's copies. `ops::intent`
//! settles it; this module only says what it holds.
//!
//! Indexes written before installs and moves shared this record kept
//! installs in `j` + id records; [`LegacyInstall`] reads them so that a
//! master upgraded after a crash still undoes them.

use serde::{Deserialize, Serialize};

use crate::record::Record;

/// What the intent record of a key holds. The JSON is the one older
/// versions wrote for a PUT (`r`, `o`, `f`); installs add `s` and `b`,
/// moves `m`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Replicas that may hold bytes of the write the key's record does not
    /// account for.
    #[serde(rename = "r")]
    pub replicas: Vec<String>,
    /// The key's record before the write (encoded).
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The write was answered as failed and its record put back: only
    /// copies are left to remove.
    #[serde(rename = "f", default)]
    pub failed: bool,
    /// An install: the staging path of the new value on each replica.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    stage: Option<String>,
    /// An install: where each old replica keeps the old value meanwhile.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    /// A move: copies made for a rebalance, the record untouched until the
    /// commit.
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    moving: bool,
}

/// How a write reaches the volumes, and so how it is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// The value goes to the key's own path; the record is soft-deleted
    /// meanwhile. Undone: the copies removed, the old record put back.
    Put,
    /// The value is staged, then takes the key's place on each replica, the
    /// old one kept at `backup`; the record is untouched until the commit.
    /// Undone: the old values put back, staged and backup files removed.
    Install { stage: &'a str, backup: &'a str },
    /// Copies of the live value go to more replicas; the record is
    /// untouched until the commit. Undone: the copies removed.
    Move,
}

impl Intent {
    fn new(replicas: &[String], old: Option<&Record>) -> Intent {
        Intent {
            replicas: replicas.to_vec(),
            old: old.map(|r| String::from_utf8_lossy(&r.encode()).into_owned()),
            failed: false,
            stage: None,
            backup: None,
            moving: false,
        }
    }

    /// A PUT about to send to `replicas`, over the key's record `old`.
    pub fn put(replicas: &[String], old: Option<&Record>) -> Intent {
        Intent::new(replicas, old)
    }

    /// An install of the value staged at `stage` on `replicas`, over `old`.
    pub fn install(replicas: &[String], old: Option<&Record>, stage: &str, backup: &str) -> Intent {
        Intent {
            stage: Some(stage.to_string()),
            backup: Some(backup.to_string()),
            ..Intent::new(replicas, old)
        }
    }

    /// Copies of a live value about to go to `replicas`.
    pub fn moving(replicas: &[String]) -> Intent {
        Intent {
            moving: true,
            ..Intent::new(replicas, None)
        }
    }

    /// A PUT answered as failed whose copies on `replicas` are not yet
    /// removed.
    pub fn failed_put(replicas: Vec<String>) -> Intent {
        Intent {
            failed: true,
            ..Intent::new(&replicas, None)
        }
    }

    /// The same write once its copies are gone from every replica but
    /// `left`: a PUT then counts as failed (its record was put back).
    pub fn remaining(&self, left: Vec<String>) -> Intent {
        match self.kind() {
            Kind::Put => Intent::failed_put(left),
            Kind::Move => Intent::moving(&left),
            Kind::Install { .. } => self.clone(),
        }
    }

    pub fn kind(&self) -> Kind<'_> {
        match (&self.stage, &self.backup) {
            (Some(stage), Some(backup)) => Kind::Install { stage, backup },
            _ if self.moving => Kind::Move,
            _ => Kind::Put,
        }
    }

    /// The key's record before the write, decoded.
    pub fn old_record(&self) -> Result<Option<Record>, crate::record::CorruptRecord> {
        self.old
            .as_deref()
            .map(|raw| Record::decode(raw.as_bytes()))
            .transpose()
    }

    /// The replicas that held the key's value before the write.
    pub fn old_replicas(&self) -> Vec<String> {
        match self.old_record() {
            Ok(Some(rec)) => rec.volumes,
            _ => Vec::new(),
        }
    }

    /// Whether readers and listings should take the key's soft record for
    /// the write's own (a PUT in flight), not for an unlinked key.
    pub fn hides_record(&self) -> bool {
        self.kind() == Kind::Put && !self.failed
    }
}

/// An install as versions before the shared intent record kept it, in a
/// `j` + id record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LegacyInstall {
    #[serde(rename = "k")]
    pub key: Vec<u8>,
    #[serde(rename = "r")]
    pub replicas: Vec<String>,
    #[serde(rename = "o")]
    pub old: Vec<String>,
    #[serde(rename = "s")]
    pub stage: String,
    #[serde(rename = "b")]
    pub backup: String,
}

impl LegacyInstall {
    /// The same install as an intent record says it.
    pub fn to_intent(&self) -> Intent {
        let old = Record::live(self.old.clone(), None);
        Intent::install(&self.replicas, Some(&old), &self.stage, &self.backup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_what_earlier_versions_wrote() {
        let put: Intent = serde_json::from_slice(
            br#"{"r":["a:1"],"o":"HASH0123456789abcdef0123456789abcdefb:2","f":false}"#,
        )
        .unwrap();
        assert_eq!(put.kind(), Kind::Put);
        assert!(put.hides_record());
        assert_eq!(put.old_replicas(), v(&["b:2"]));
        let failed: Intent = serde_json::from_slice(br#"{"r":["a:1"],"f":true}"#).unwrap();
        assert_eq!(failed, Intent::failed_put(v(&["a:1"])));
        assert!(!failed.hides_record());
        let legacy: LegacyInstall = serde_json::from_slice(
            br#"{"k":[47,107],"r":["a:1"],"o":["b:2"],"s":"/.mkv-parts/x.stage","b":"/.mkv-parts/x.old"}"#,
        )
        .unwrap();
        let intent = legacy.to_intent();
        assert_eq!(
            intent.kind(),
            Kind::Install {
                stage: "/.mkv-parts/x.stage",
                backup: "/.mkv-parts/x.old"
            }
        );
        assert_eq!(intent.old_replicas(), v(&["b:2"]));
    }

    #[test]
    fn round_trips_each_kind() {
        let old = Record::live(v(&["b:2"]), None);
        for intent in [
            Intent::put(&v(&["a:1"]), None),
            Intent::put(&v(&["a:1", "c:3"]), Some(&old)),
            Intent::install(&v(&["a:1"]), Some(&old), "/s", "/b"),
            Intent::moving(&v(&["c:3"])),
            Intent::failed_put(v(&["a:1"])),
        ] {
            let raw = serde_json::to_vec(&intent).unwrap();
            assert!(raw.starts_with(b"{"));
            assert_eq!(serde_json::from_slice::<Intent>(&raw).unwrap(), intent);
        }
        assert_eq!(Intent::moving(&v(&["c:3"])).kind(), Kind::Move);
        assert!(!Intent::moving(&v(&["c:3"])).hides_record());
        assert!(!Intent::install(&v(&["a:1"]), None, "/s", "/b").hides_record());
    }
}
