//! One stream of bytes to several volumes at once: the uploads of a PUT,
//! the copies of a rebalance, the parts of an S3 upload. Each chunk is
//! shared (not copied) by the sends, which run together; the CRC32 of what
//! was sent is computed on the way and sent as a trailer with the md5
//! (volume-uring refuses a body that does not match its CRC, and keeps the
//! md5 for rebuilds), then checked against the CRC each volume says it
//! stored. The caller's digests are computed alongside the sends.

use bytes::Bytes;
use futures_util::future::join_all;

use super::reply::{crc_text, CRC_TRAILER, MD5_TRAILER};
use super::{ClientError, Reply, Upload, VolumeClient};
use crate::digests::{Digests, Sums};
use crate::error::MasterError;

/// Where one copy goes: a replica entry (`host:port/sv07`), the path under
/// it, and for a ranged write into an existing file its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub replica: String,
    pub path: String,
    pub offset: Option<u64>,
}

impl Target {
    pub fn new(replica: &str, path: &str) -> Target {
        Target {
            replica: replica.to_string(),
            path: path.to_string(),
            offset: None,
        }
    }

    /// The same path on each of `replicas`.
    pub fn each(replicas: &[String], path: &str) -> Vec<Target> {
        replicas.iter().map(|r| Target::new(r, path)).collect()
    }
}

pub struct Fanout<'c> {
    replicas: Vec<String>,
    uploads: Vec<Upload<'c>>,
    crc: crc32fast::Hasher,
    digests: Digests,
}

/// What went out, once every volume stored it.
pub struct Sent {
    pub sums: Sums,
    pub crc32: u32,
    pub bytes: u64,
}

impl Sent {
    pub fn md5(&self) -> Option<String> {
        self.sums.md5_hex()
    }
}

impl<'c> Fanout<'c> {
    /// Opens a PUT on every target; `digests` are computed of what is sent
    /// (the md5 among them goes to the volumes as a trailer).
    pub async fn open(
        client: &'c VolumeClient,
        targets: &[Target],
        digests: Digests,
    ) -> Result<Fanout<'c>, MasterError> {
        let opened = join_all(targets.iter().map(|t| client.start_put(t))).await;
        Ok(Fanout {
            replicas: targets.iter().map(|t| t.replica.clone()).collect(),
            uploads: opened.into_iter().collect::<Result<_, _>>()?,
            crc: crc32fast::Hasher::new(),
            digests,
        })
    }

    /// Sends a piece of the value that is not its last.
    pub async fn send(&mut self, chunk: Vec<u8>) -> Result<(), MasterError> {
        self.crc.update(&chunk);
        let chunk = Bytes::from(chunk);
        let sends = join_all(self.uploads.iter_mut().map(|u| u.send(chunk.clone())));
        let results = self.digests.update_while(chunk.clone(), sends).await?;
        for sent in results {
            sent?;
        }
        Ok(())
    }

    /// Sends the last piece (possibly empty) with the trailers, and checks
    /// every answer. Replicas that stored the value (even wrongly) are pushed
    /// to `landed`, for cleanup on failure.
    pub async fn finish(
        self,
        last: Vec<u8>,
        landed: &mut Vec<String>,
    ) -> Result<Sent, MasterError> {
        self.finish_checked(last, landed, |_| Ok(())).await
    }

    /// [`Fanout::finish`], once `check` has accepted the digests of the whole
    /// value; if it refuses, the uploads are cut off before their end, so
    /// no volume stores anything.
    pub async fn finish_checked<E: From<MasterError>>(
        mut self,
        last: Vec<u8>,
        landed: &mut Vec<String>,
        check: impl FnOnce(&Sums) -> Result<(), E>,
    ) -> Result<Sent, E> {
        self.crc.update(&last);
        let last = Bytes::from(last);
        self.digests.update_while(last.clone(), async {}).await?;
        let Fanout {
            replicas,
            uploads,
            crc,
            digests,
        } = self;
        let sums = digests.finish();
        check(&sums)?;
        let sent_crc = crc.finalize();
        let crc_hex = crc_text(sent_crc);
        let md5 = sums.md5_hex();
        let mut trailers = vec![(CRC_TRAILER, crc_hex.as_str())];
        if let Some(m) = &md5 {
            trailers.push((MD5_TRAILER, m.as_str()));
        }
        let answers = join_all(
            uploads
                .into_iter()
                .map(|u| u.finish(last.clone(), &trailers)),
        )
        .await;
        check_answers(&replicas, answers, sent_crc, landed)?;
        let bytes = sums.len;
        Ok(Sent {
            sums,
            crc32: sent_crc,
            bytes,
        })
    }
}

/// Checks each volume's answer to the PUT: stored, and stored what was sent
/// (`sent_crc`). Replicas that stored the value (even wrongly) are pushed
/// to `landed`. Of several failures, a replica out of space (507) is the
/// one reported, so the client learns why; otherwise the last.
fn check_answers(
    replicas: &[String],
    answers: Vec<Result<Reply, ClientError>>,
    sent_crc: u32,
    landed: &mut Vec<String>,
) -> Result<(), MasterError> {
    let mut failure: Option<MasterError> = None;
    for (replica, answer) in replicas.iter().zip(answers) {
        let e = match answer {
            Ok(r) if r.status == 201 || r.status == 204 => {
                landed.push(replica.clone());
                match r.crc32 {
                    Some(stored) if stored != sent_crc => MasterError::ReplicaAnswer {
                        replica: replica.clone(),
                        why: format!("stored CRC32 {stored:08x}, sent {sent_crc:08x}"),
                    },
                    _ => continue,
                }
            }
            Ok(r) => MasterError::Replica(ClientError {
                status: Some(r.status),
                ..ClientError::new(replica, format!("answered {} to the PUT", r.status))
            }),
            Err(e) => e.into(),
        };
        if failure.as_ref().and_then(MasterError::status) != Some(507) {
            failure = Some(e);
        }
    }
    failure.map_or(Ok(()), Err)
}
