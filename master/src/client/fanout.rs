//! One stream of bytes to several volumes at once: the uploads of a PUT,
//! and the copies of a rebalance. Each chunk is shared (not copied) by the
//! sends, which run together; the CRC32 and md5 of what was sent are
//! computed on the way, sent as trailers (volume-uring refuses a body that
//! does not match its CRC, and keeps the md5 for rebuilds), and checked
//! against the CRC each volume says it stored.

use bytes::Bytes;
use futures_util::future::join_all;
use md5::{Digest, Md5};

use super::reply::{crc_text, CRC_TRAILER, MD5_TRAILER};
use super::{ClientError, Reply, Upload, VolumeClient};
use crate::error::MasterError;

/// Bodies larger than this have their md5 computed off the runtime thread.
const HASH_OFFLOAD_AFTER: u64 = 1 << 20;

pub struct Fanout<'c> {
    replicas: Vec<String>,
    uploads: Vec<Upload<'c>>,
    crc: crc32fast::Hasher,
    md5: Option<Md5>,
    sent: u64,
}

/// What went out, once every volume stored it.
pub struct Sent {
    pub md5: Option<String>,
    pub crc32: u32,
    pub bytes: u64,
}

impl<'c> Fanout<'c> {
    /// Opens a PUT of `path` (after each replica's subvolume prefix) on every
    /// replica; with `with_md5`, the md5 of the value is computed and sent.
    pub async fn open(
        client: &'c VolumeClient,
        replicas: &[String],
        path: &str,
        with_md5: bool,
    ) -> Result<Fanout<'c>, MasterError> {
        let opened = join_all(replicas.iter().map(|r| client.start_put(r, path))).await;
        Ok(Fanout {
            replicas: replicas.to_vec(),
            uploads: opened.into_iter().collect::<Result<_, _>>()?,
            crc: crc32fast::Hasher::new(),
            md5: with_md5.then(Md5::new),
            sent: 0,
        })
    }

    /// Sends a piece of the value that is not its last.
    pub async fn send(&mut self, chunk: Vec<u8>) -> Result<(), MasterError> {
        self.crc.update(&chunk);
        let offload = self.sent >= HASH_OFFLOAD_AFTER;
        self.sent += chunk.len() as u64;
        let chunk = Bytes::from(chunk);
        let sends = join_all(self.uploads.iter_mut().map(|u| u.send(chunk.clone())));
        let results = match self.md5.take() {
            // Past the first MiB, md5 (~0.7 GB/s) runs on the blocking pool
            // while the chunk is being sent, not before.
            Some(mut md5) if offload => {
                let piece = chunk.clone();
                let hashed = monoio::spawn_blocking(move || {
                    md5.update(&piece);
                    md5
                });
                let (hashed, results) = monoio::join!(hashed, sends);
                let md5 = hashed.map_err(|_| MasterError::Pool("md5"))?;
                self.md5 = Some(md5);
                results
            }
            Some(mut md5) => {
                md5.update(&chunk);
                self.md5 = Some(md5);
                sends.await
            }
            None => sends.await,
        };
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
        let Fanout {
            replicas,
            uploads,
            mut crc,
            md5,
            sent,
        } = self;
        crc.update(&last);
        let sent_crc = crc.finalize();
        let md5 = md5.map(|mut m| {
            m.update(&last);
            hex(&m.finalize())
        });
        let crc_hex = crc_text(sent_crc);
        let mut trailers = vec![(CRC_TRAILER, crc_hex.as_str())];
        if let Some(m) = &md5 {
            trailers.push((MD5_TRAILER, m.as_str()));
        }
        let bytes = sent + last.len() as u64;
        let last = Bytes::from(last);
        let answers = join_all(
            uploads
                .into_iter()
                .map(|u| u.finish(last.clone(), &trailers)),
        )
        .await;
        check_answers(&replicas, answers, sent_crc, landed)?;
        Ok(Sent {
            md5,
            crc32: sent_crc,
            bytes,
        })
    }
}

/// Checks each volume's answer to the PUT: stored, and stored what was sent
/// (`sent_crc`). Replicas that stored the value (even wrongly) are pushed
/// to `landed`; the error is the last failure.
fn check_answers(
    replicas: &[String],
    answers: Vec<Result<Reply, ClientError>>,
    sent_crc: u32,
    landed: &mut Vec<String>,
) -> Result<(), MasterError> {
    let mut failure = None;
    for (replica, answer) in replicas.iter().zip(answers) {
        let why = match answer {
            Ok(r) if r.status == 201 || r.status == 204 => {
                landed.push(replica.clone());
                match r.crc32 {
                    Some(stored) if stored != sent_crc => {
                        format!("stored CRC32 {stored:08x}, sent {sent_crc:08x}")
                    }
                    _ => continue,
                }
            }
            Ok(r) => format!("answered {} to the PUT", r.status),
            Err(e) => {
                failure = Some(e.into());
                continue;
            }
        };
        failure = Some(MasterError::ReplicaAnswer {
            replica: replica.clone(),
            why,
        });
    }
    failure.map_or(Ok(()), Err)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
