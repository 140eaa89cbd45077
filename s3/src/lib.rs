//! mkv-s3: the S3 API, on the master's port (and on `--s3-port`):
//! docs/s3.md. It reads and writes through `mkv_store` — a [`Store`]'s
//! index (records with their metadata, scans, batches) and its `ops`
//! (a new value, an installed overwrite, a delete, the intents) — and
//! knows nothing of the plain API.
//!
//! - `router`: which requests are S3's, and which operation each asks for;
//!   `request`: what an operation knows of one; `error`: S3's XML errors.
//! - `auth`, `sigv4` and `sigv2`: signatures; `payload`: request bodies,
//!   `aws-chunked` ones decoded and checked on the fly; `checks`: the
//!   checksums a write announces; `xml`: reading and writing XML.
//! - The operations: `bucket`, `list`, `object` (PutObject),
//!   `get` (GetObject, HeadObject), `copy` (CopyObject), `delete`
//!   (DeleteObject, DeleteObjects), `conditions` (If-Match and friends,
//!   on reads and on writes), `acl` (the one owner's FULL_CONTROL),
//!   `multipart` and `complete`, `uploads` (ListMultipartUploads). A value
//!   over a live one is staged and installed by `ops::install`.

pub mod acl;
pub mod auth;
pub mod bucket;
pub mod checks;
pub mod complete;
pub mod conditions;
pub mod copy;
pub mod delete;
pub mod error;
pub mod get;
pub mod list;
pub mod multipart;
pub mod object;
pub mod payload;
pub mod post;
pub mod request;
pub mod router;
pub mod sigv2;
pub mod sigv4;
pub mod uploads;
pub mod xml;

use http1::{Answer, BodyReader, Conn, RequestHead};
use mkv_store::Store;
// The store's modules, by the names the operations use.
use mkv_store::{client, digests, index, meta, ops, placement, record, time};

use auth::{Credentials, Signer};
use error::{Code, Error, S3Error};
use index::Index;
use ops::locks::{KeyGuard, KeyLocks};
use request::S3Req;
use router::Op;

/// The S3 API's settings.
#[derive(Default)]
pub struct Config {
    /// With credentials, S3 requests must be signed by one of them.
    pub credentials: Option<Credentials>,
}

/// One S3 request being answered.
pub struct Cx<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub req: S3Req<'a>,
    /// The verified signature, when credentials are set.
    pub signer: Option<Signer>,
}

/// Answers an S3 request; errors become S3 XML in the front's error path.
pub async fn serve(
    store: &Store,
    config: &Config,
    conn: &mut Conn,
    head: &RequestHead,
    keep_alive: bool,
) -> Result<Answer, Error> {
    let req = S3Req::parse(head, keep_alive)?;
    // A POST Object is signed in its form (its policy), checked by `post`.
    let form = req.key.is_empty() && head.method == http1::Method::Post && post::is_form(head);
    let signer = match form {
        true => None,
        false => auth::verify(config.credentials.as_ref(), &req)?,
    };
    let op = router::route(&req)?;
    let cx = Cx {
        store,
        config,
        req,
        signer,
    };
    dispatch(&cx, conn, op).await
}

async fn dispatch(cx: &Cx<'_>, conn: &mut Conn, op: Op) -> Result<Answer, Error> {
    let writes = matches!(
        op,
        Op::PutObject
            | Op::CopyObject
            | Op::CreateMultipartUpload
            | Op::CreateBucket
            | Op::PostObject
    );
    if writes {
        acl::check_headers(&cx.req)?;
    }
    match op {
        Op::ListBuckets => bucket::list_all(cx, conn).await,
        Op::CreateBucket => bucket::create(cx, conn).await,
        Op::HeadBucket => bucket::head(cx, conn).await,
        Op::DeleteBucket => bucket::delete(cx, conn).await,
        Op::GetBucketLocation => bucket::location(cx, conn).await,
        Op::GetBucketVersioning => bucket::versioning(cx, conn).await,
        Op::GetBucketAcl | Op::GetObjectAcl => acl::get(cx, conn).await,
        Op::PutBucketAcl | Op::PutObjectAcl => acl::put(cx, conn).await,
        Op::ListObjectsV1 => list::v1(cx, conn).await,
        Op::ListObjectsV2 => list::v2(cx, conn).await,
        Op::ListObjectVersions => list::versions(cx, conn).await,
        Op::ListMultipartUploads => uploads::list_uploads(cx, conn).await,
        Op::DeleteObjects => delete::delete_objects(cx, conn).await,
        Op::PostObject => post::post(cx, conn).await,
        Op::PutObject => object::put(cx, conn).await,
        Op::CopyObject => copy::copy_object(cx, conn).await,
        Op::GetObject => get::serve(cx, conn, false).await,
        Op::HeadObject => get::serve(cx, conn, true).await,
        Op::DeleteObject => delete::delete(cx, conn).await,
        Op::CreateMultipartUpload => multipart::create(cx, conn).await,
        Op::UploadPart { upload_id, part } => {
            multipart::upload_part(cx, conn, &upload_id, part).await
        }
        Op::CompleteMultipartUpload { upload_id } => complete::complete(cx, conn, &upload_id).await,
        Op::AbortMultipartUpload { upload_id } => multipart::abort(cx, conn, &upload_id).await,
        Op::ListParts { upload_id } => uploads::list_parts(cx, conn, &upload_id).await,
    }
}

/// How long an S3 write of a key waits for another write of it to end
/// (S3 lets writers of a key overlap: each succeeds, the last to commit is
/// what readers see). Past it, the answer is a 409.
pub const WAIT_FOR_KEY: std::time::Duration = std::time::Duration::from_secs(120);

/// The write lock of `key` (a key, or a part's record), waited for.
pub async fn lock_key<'s>(cx: &Cx<'s>, key: &[u8]) -> Result<KeyGuard<'s>, Error> {
    let locks: &'s KeyLocks = &cx.store.locks;
    match locks.lock(key, WAIT_FOR_KEY).await? {
        Some(guard) => Ok(guard),
        None => Err(conditions::busy(cx.req.head).into()),
    }
}

/// Runs `f` on the index on the blocking pool (scans take a while; the
/// runtime thread serves on meanwhile).
pub async fn blocking<T, F>(cx: &Cx<'_>, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&Index) -> Result<T, Error> + Send + 'static,
{
    cx.store.blocking("an index scan", f).await
}

/// Reads a request body that is read whole (XML), up to `max` bytes.
pub async fn read_small_body(
    conn: &mut Conn,
    head: &RequestHead,
    max: usize,
) -> Result<Vec<u8>, Error> {
    let mut body = BodyReader::new(head.body);
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf = body.read_full(conn, buf).await?;
        if body.is_done() {
            return Ok(buf);
        }
        if buf.len() >= max {
            return Err(
                S3Error::new(Code::MaxMessageLengthExceeded, "Your request was too big.").into(),
            );
        }
        buf.reserve(64 * 1024);
    }
}
