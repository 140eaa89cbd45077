//! Which requests are S3 requests, and which operation each asks for.

use http1::{percent, Method, RequestHead};

use super::error::{Code, S3Error};
use super::request::S3Req;

/// Query parameters only S3 requests carry: sub-resources, listing and
/// multipart parameters, presigned URLs' own (and [`UNSUPPORTED`]'s).
const S3_PARAMS: &[&str] = &[
    "list-type",
    "uploads",
    "uploadId",
    "partNumber",
    "delete",
    "x-id",
    "versions",
    "versionId",
    "location",
    "versioning",
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "max-uploads",
    "key-marker",
    "upload-id-marker",
    "max-parts",
    "part-number-marker",
    "version-id-marker",
    "acl",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// Whether a request on the master's port is an S3 request: signed the AWS
/// way, carrying an `x-amz-*` or `amz-sdk-*` header, or an S3 query
/// parameter. Everything else is the original's API.
pub fn is_s3(head: &RequestHead) -> bool {
    let marked = head.headers().any(|(name, value)| {
        starts_with_ci(name, b"x-amz-")
            || starts_with_ci(name, b"amz-sdk-")
            || (name.eq_ignore_ascii_case(b"authorization") && value.starts_with(b"AWS"))
    });
    // The plain API has no POST: a form posted is a browser's upload.
    let form = head.method == Method::Post && super::post::is_form(head);
    marked
        || form
        || head.query().is_some_and(|q| {
            percent::query_pairs(q).any(|(name, _)| {
                S3_PARAMS
                    .iter()
                    .chain(UNSUPPORTED)
                    .any(|p| p.as_bytes() == name)
                    || starts_with_ci(name, b"response-")
            })
        })
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    ListObjectsV1,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PostObject,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    CreateMultipartUpload,
    UploadPart { upload_id: String, part: u32 },
    CompleteMultipartUpload { upload_id: String },
    AbortMultipartUpload { upload_id: String },
    ListParts { upload_id: String },
}

/// Sub-resources of buckets and objects this store does not have.
const UNSUPPORTED: &[&str] = &[
    "tagging",
    "policy",
    "cors",
    "lifecycle",
    "encryption",
    "website",
    "logging",
    "notification",
    "replication",
    "requestPayment",
    "object-lock",
    "retention",
    "legal-hold",
    "attributes",
    "torrent",
    "restore",
    "select",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "ownershipControls",
    "publicAccessBlock",
    "intelligent-tiering",
];

pub fn route(req: &S3Req<'_>) -> Result<Op, S3Error> {
    if let Some(sub) = UNSUPPORTED.iter().find(|s| req.has(s)) {
        return Err(S3Error::not_implemented(&format!(
            "The ?{sub} sub-resource"
        )));
    }
    if let Some(v) = req
        .param("versionId")
        .filter(|v| !v.is_empty() && *v != "null")
    {
        return Err(S3Error::new(
            Code::NoSuchVersion,
            format!("Version {v} does not exist: versioning is off."),
        ));
    }
    let method = req.head.method;
    if req.bucket.is_empty() {
        return match method {
            Method::Get => Ok(Op::ListBuckets),
            _ => Err(method_not_allowed()),
        };
    }
    if req.key.is_empty() {
        bucket_op(req, method)
    } else {
        object_op(req, method)
    }
}

fn method_not_allowed() -> S3Error {
    S3Error::new(
        Code::MethodNotAllowed,
        "The specified method is not allowed against this resource.",
    )
}

fn bucket_op(req: &S3Req<'_>, method: Method) -> Result<Op, S3Error> {
    Ok(match method {
        Method::Get if req.has("acl") => Op::GetBucketAcl,
        Method::Put if req.has("acl") => Op::PutBucketAcl,
        Method::Put => Op::CreateBucket,
        Method::Head => Op::HeadBucket,
        Method::Delete => Op::DeleteBucket,
        Method::Post if req.has("delete") => Op::DeleteObjects,
        Method::Post if super::post::is_form(req.head) => Op::PostObject,
        Method::Get if req.has("location") => Op::GetBucketLocation,
        Method::Get if req.has("versioning") => Op::GetBucketVersioning,
        Method::Get if req.has("uploads") => Op::ListMultipartUploads,
        Method::Get if req.has("versions") => Op::ListObjectVersions,
        Method::Get if req.param("list-type") == Some("2") => Op::ListObjectsV2,
        Method::Get if req.has("list-type") => {
            return Err(S3Error::invalid_argument("list-type must be 2"))
        }
        Method::Get => Op::ListObjectsV1,
        _ => return Err(method_not_allowed()),
    })
}

fn object_op(req: &S3Req<'_>, method: Method) -> Result<Op, S3Error> {
    let upload_id = req.param("uploadId").map(str::to_string);
    Ok(match (method, upload_id) {
        (Method::Put, Some(upload_id)) => {
            if req.head.header("x-amz-copy-source").is_some() {
                return Err(S3Error::not_implemented("UploadPartCopy"));
            }
            let part = req
                .param("partNumber")
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| (1..=10_000).contains(p))
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Part number must be an integer between 1 and 10000, inclusive",
                    )
                })?;
            Op::UploadPart { upload_id, part }
        }
        (Method::Get, None) if req.has("acl") => Op::GetObjectAcl,
        (Method::Put, None) if req.has("acl") => Op::PutObjectAcl,
        (Method::Put, None) if req.head.header("x-amz-copy-source").is_some() => Op::CopyObject,
        (Method::Put, None) => Op::PutObject,
        (Method::Get, Some(upload_id)) => Op::ListParts { upload_id },
        (Method::Get | Method::Head, None) if req.has("partNumber") => {
            return Err(S3Error::not_implemented("Reading one part of an object"))
        }
        (Method::Get, None) => Op::GetObject,
        (Method::Head, None) => Op::HeadObject,
        (Method::Post, None) if req.has("uploads") => Op::CreateMultipartUpload,
        (Method::Post, Some(upload_id)) => Op::CompleteMultipartUpload { upload_id },
        (Method::Delete, Some(upload_id)) => Op::AbortMultipartUpload { upload_id },
        (Method::Delete, None) => Op::DeleteObject,
        _ => return Err(method_not_allowed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http1::request::{self, HeadLimits};

    fn head(raw: &str) -> RequestHead {
        let mut h = RequestHead::default();
        request::parse(raw.as_bytes(), &mut h, &HeadLimits::default())
            .unwrap()
            .unwrap();
        h
    }

    fn op(raw: &str) -> Result<Op, S3Error> {
        let h = head(raw);
        route(&S3Req::parse(&h, true).unwrap())
    }

    #[test]
    fn recognised() {
        let s3 = [
            "GET /b?list-type=2 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /b/k?X-Amz-Signature=ab HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /b/k HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=a\r\n\r\n",
            "PUT /b/k HTTP/1.1\r\nHost: x\r\nX-Amz-Date: 1\r\nContent-Length: 1\r\n\r\n",
            "GET /b/k HTTP/1.1\r\nHost: x\r\namz-sdk-invocation-id: 1\r\n\r\n",
            "POST /b/k?uploads HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        for raw in s3 {
            assert!(is_s3(&head(raw)), "{raw}");
        }
        let plain = [
            "GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /?list&limit=3 HTTP/1.1\r\nHost: x\r\n\r\n",
            "PUT /k?anything HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n",
            "UNLINK /k HTTP/1.1\r\nHost: x\r\nAuthorization: Basic abc\r\n\r\n",
        ];
        for raw in plain {
            assert!(!is_s3(&head(raw)), "{raw}");
        }
    }

    #[test]
    fn operations() {
        let r = |m: &str, t: &str| op(&format!("{m} {t} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r("GET", "/").unwrap(), Op::ListBuckets);
        assert_eq!(r("PUT", "/b").unwrap(), Op::CreateBucket);
        assert_eq!(
            r("GET", "/b/?list-type=2&prefix=a").unwrap(),
            Op::ListObjectsV2
        );
        assert_eq!(r("GET", "/b").unwrap(), Op::ListObjectsV1);
        assert_eq!(r("GET", "/b?location").unwrap(), Op::GetBucketLocation);
        assert_eq!(r("POST", "/b?delete").unwrap(), Op::DeleteObjects);
        assert_eq!(r("GET", "/b/k?x-id=GetObject").unwrap(), Op::GetObject);
        assert_eq!(
            r("POST", "/b/k?uploads").unwrap(),
            Op::CreateMultipartUpload
        );
        assert_eq!(
            r("PUT", "/b/k?partNumber=3&uploadId=u").unwrap(),
            Op::UploadPart {
                upload_id: "u".into(),
                part: 3
            }
        );
        assert_eq!(
            r("PUT", "/b/k?partNumber=0&uploadId=u")
                .unwrap_err()
                .code
                .as_str(),
            "InvalidArgument"
        );
        assert_eq!(r("GET", "/b/k?acl").unwrap(), Op::GetObjectAcl);
        assert_eq!(r("PUT", "/b?acl").unwrap(), Op::PutBucketAcl);
        assert_eq!(
            r("GET", "/b/k?tagging").unwrap_err().code.as_str(),
            "NotImplemented"
        );
        assert_eq!(
            r("GET", "/b/k?versionId=3").unwrap_err().code.as_str(),
            "NoSuchVersion"
        );
        assert_eq!(
            r("POST", "/b/k").unwrap_err().code.as_str(),
            "MethodNotAllowed"
        );
        let h = head("GET /b/a%2Fb+c?prefix=x+y HTTP/1.1\r\nHost: x\r\n\r\n");
        let req = S3Req::parse(&h, true).unwrap();
        assert_eq!(
            (req.bucket.as_str(), req.key.as_slice()),
            ("b", &b"a/b+c"[..])
        );
        assert_eq!(req.mkv_key, b"/b/a/b+c");
        assert_eq!(req.param("prefix"), Some("x y"));
    }
}
