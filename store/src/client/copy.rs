//! Copies between volumes, through the master: byte ranges of files on
//! some volumes, one after the other, streamed to files on others (the
//! copies of a rebalance, S3's CopyObject, and what nginx volumes cannot do
//! themselves: assembling staged parts, keeping an old value aside). Every
//! piece's length (and CRC32, where its volume keeps one) is checked, and
//! the copies' CRC32 against the volumes' answers; a failed copy removes
//! what it wrote.

use super::fanout::{Fanout, Sent, Target};
use super::{Download, VolumeClient};
use crate::digests::{Digests, Sums};
use crate::error::MasterError;

/// Bytes read from a source before each round of sends.
const CHUNK: usize = 256 * 1024;

/// A byte range of a file on a volume; `range: None` is the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub replica: String,
    pub path: String,
    /// (offset, length).
    pub range: Option<(u64, u64)>,
}

impl Piece {
    pub fn whole(replica: &str, path: &str) -> Piece {
        Piece {
            replica: replica.to_string(),
            path: path.to_string(),
            range: None,
        }
    }
}

fn refused(replica: &str, why: String) -> MasterError {
    MasterError::ReplicaAnswer {
        replica: replica.to_string(),
        why,
    }
}

/// [`copy`] of `pieces` into one file, `to`, with no digests to check:
/// a volume's files assembled or moved where the master cannot have the
/// volume do it.
pub async fn copy_into_file(
    client: &VolumeClient,
    pieces: &[Piece],
    to: Target,
) -> Result<Sent, MasterError> {
    let no_check = |_: &Sums| Ok::<(), MasterError>(());
    copy(client, pieces, &[to], Digests::new(false, &[]), no_check).await
}

/// Streams `pieces`, in order, to every target; `digests` are computed of
/// the whole (with an md5 among them it goes to volume-uring as a trailer),
/// and `check` sees them before the last bytes go out (its error cuts the
/// copies off). On failure, the targets that stored something are cleared.
pub async fn copy<E: From<MasterError>>(
    client: &VolumeClient,
    pieces: &[Piece],
    targets: &[Target],
    digests: Digests,
    check: impl FnOnce(&Sums) -> Result<(), E>,
) -> Result<Sent, E> {
    let mut landed = Vec::new();
    let result = copy_into(client, pieces, targets, digests, check, &mut landed).await;
    if result.is_err() {
        for target in targets.iter().filter(|t| landed.contains(&t.replica)) {
            if let Err(e) = client.delete(&target.replica, &target.path).await {
                tracing::warn!(error = %e, "could not remove the copy of a failed transfer");
            }
        }
    }
    result
}

async fn copy_into<E: From<MasterError>>(
    client: &VolumeClient,
    pieces: &[Piece],
    targets: &[Target],
    digests: Digests,
    check: impl FnOnce(&Sums) -> Result<(), E>,
    landed: &mut Vec<String>,
) -> Result<Sent, E> {
    let mut fanout = Fanout::open(client, targets, digests).await?;
    let mut pending: Option<Vec<u8>> = None;
    for piece in pieces {
        let mut download = open_piece(client, piece).await?;
        let want = download.reply().content_length;
        let mut got = 0u64;
        let mut crc = crc32fast::Hasher::new();
        loop {
            // The next piece is read while the last one goes out.
            let next = download.read_chunk(CHUNK);
            let (sent, next) = match pending.take() {
                Some(chunk) => {
                    let (sent, next) = monoio::join!(fanout.send(chunk), next);
                    (sent, next)
                }
                None => (Ok(()), next.await),
            };
            sent?;
            let chunk = next.map_err(MasterError::from)?;
            got += chunk.len() as u64;
            crc.update(&chunk);
            let end = chunk.is_empty() || download.is_done();
            if !chunk.is_empty() {
                pending = Some(chunk);
            }
            if end {
                break;
            }
        }
        check_piece(piece, &download, want, (got, crc.finalize()))?;
        download.done();
    }
    fanout
        .finish_checked(pending.unwrap_or_default(), landed, check)
        .await
}

/// A GET of the piece (with a `Range` for a part of a file).
async fn open_piece<'c>(
    client: &'c VolumeClient,
    piece: &Piece,
) -> Result<Download<'c>, MasterError> {
    let range = piece
        .range
        .filter(|&(_, len)| len > 0)
        .map(|(from, len)| format!("bytes={from}-{}", from + len - 1));
    let download = client
        .start_get_range(&piece.replica, &piece.path, range.as_deref())
        .await?;
    let want = if range.is_some() { 206 } else { 200 };
    let status = download.reply().status;
    if status != want {
        return Err(refused(
            &piece.replica,
            format!("answered {status} to the GET of {}", piece.path),
        ));
    }
    Ok(download)
}

/// The piece was read whole: its length, and where its volume keeps a
/// CRC32 of the whole file, its CRC32.
fn check_piece(
    piece: &Piece,
    download: &Download<'_>,
    want: Option<u64>,
    (got, crc): (u64, u32),
) -> Result<(), MasterError> {
    let expected = piece.range.map(|(_, len)| len).or(want);
    if let Some(len) = expected.filter(|&l| l != got) {
        return Err(refused(
            &piece.replica,
            format!("sent {got} bytes of {len}"),
        ));
    }
    let stored = download.reply().crc32.filter(|_| piece.range.is_none());
    if let Some(stored) = stored.filter(|&s| s != crc) {
        return Err(refused(
            &piece.replica,
            format!("its CRC32 says {stored:08x}, its bytes {crc:08x}"),
        ));
    }
    Ok(())
}
