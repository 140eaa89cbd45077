//! AWS Signature Version 4, as S3 uses it: the canonical request, the
//! string to sign, the signing key and the signature, for the
//! `Authorization` header, presigned URLs and signed `aws-chunked` chunks.
//! Pure functions: `auth` decides what a request is allowed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub use crate::digests::hex;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The sha256 of nothing, as hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a signature claims: who signed, when, for which scope, over which
/// headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub access_key: String,
    /// `yyyymmdd`, from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `yyyymmddThhmmssZ`.
    pub amz_date: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
    /// Seconds a presigned URL is valid for; `None` for header auth.
    pub expires: Option<u64>,
}

impl Claim {
    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// Parses `AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
/// SignedHeaders=host;range, Signature=abc...`; `amz_date` comes from the
/// `x-amz-date` (or `Date`) header.
pub fn parse_authorization(value: &str, amz_date: &str) -> Result<Claim, Malformed> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or(Malformed("unsupported authorization algorithm"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, val) = part
            .trim()
            .split_once('=')
            .ok_or(Malformed("malformed authorization header"))?;
        match name.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or(Malformed("authorization without Credential"))?;
    let signed = signed.ok_or(Malformed("authorization without SignedHeaders"))?;
    let signature = signature.ok_or(Malformed("authorization without Signature"))?;
    claim(credential, signed, signature, amz_date, None)
}

/// The claim of a presigned URL, from its `X-Amz-*` query parameters
/// (decoded); `None` when the query has no `X-Amz-Signature`.
pub fn parse_presigned(get: impl Fn(&str) -> Option<String>) -> Result<Option<Claim>, Malformed> {
    let Some(signature) = get("X-Amz-Signature") else {
        return Ok(None);
    };
    if get("X-Amz-Algorithm").as_deref() != Some(ALGORITHM) {
        return Err(Malformed("unsupported X-Amz-Algorithm"));
    }
    let credential = get("X-Amz-Credential").ok_or(Malformed("no X-Amz-Credential"))?;
    let signed = get("X-Amz-SignedHeaders").ok_or(Malformed("no X-Amz-SignedHeaders"))?;
    let amz_date = get("X-Amz-Date").ok_or(Malformed("no X-Amz-Date"))?;
    let expires = get("X-Amz-Expires")
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|&e| e <= 7 * 24 * 3600)
        .ok_or(Malformed(
            "X-Amz-Expires must be a number of seconds up to 604800",
        ))?;
    claim(&credential, &signed, &signature, &amz_date, Some(expires)).map(Some)
}

fn claim(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: &str,
    expires: Option<u64>,
) -> Result<Claim, Malformed> {
    // The access key may itself hold `/`: the scope is the last four parts.
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next();
    let service = parts.next();
    let region = parts.next();
    let date = parts.next();
    let access_key = parts.next();
    let (Some("aws4_request"), Some(service), Some(region), Some(date), Some(access_key)) =
        (terminator, service, region, date, access_key)
    else {
        return Err(Malformed("malformed credential scope"));
    };
    if date.len() != 8 || !amz_date.starts_with(date) {
        return Err(Malformed("the credential date is not the request's date"));
    }
    // A signature of the wrong shape simply does not match (a 403).
    Ok(Claim {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        amz_date: amz_date.to_string(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_ascii_lowercase(),
        expires,
    })
}

/// URI-encodes as SigV4 does: unreserved characters stay, everything else
/// is `%XX` (upper case); `/` stays when `keep_slash`.
pub fn uri_encode(raw: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in raw {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) || (keep_slash && c == b'/') {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 0xf)] as char);
        }
    }
}

/// The canonical query string: every parameter but the signature,
/// decoded then strictly encoded, sorted.
pub fn canonical_query(query: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = http1::percent::query_pairs(query)
        .filter(|(name, _)| *name != b"X-Amz-Signature")
        .map(|(name, value)| (encode_component(name), encode_component(value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn encode_component(raw: &[u8]) -> String {
    let mut decoded = Vec::new();
    if http1::percent::decode(raw, &mut decoded).is_err() {
        decoded = raw.to_vec();
    }
    let mut out = String::with_capacity(decoded.len());
    uri_encode(&decoded, false, &mut out);
    out
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces
/// collapsed to one.
pub fn canonical_value(value: &[u8], out: &mut String) {
    let text = String::from_utf8_lossy(value);
    let mut last_space = false;
    for c in text.trim().chars() {
        if c == ' ' || c == '\t' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

/// The parts of a request a signature covers.
pub struct Canonical<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    /// `name:value\n` for each signed header, in signed order.
    pub headers: &'a str,
    pub signed_headers: &'a str,
    pub payload_hash: &'a str,
}

impl Canonical<'_> {
    pub fn request(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method, self.uri, self.query, self.headers, self.signed_headers, self.payload_hash
        )
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key a secret signs with for one day, region and service.
pub fn signing_key(secret: &str, claim: &Claim) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), claim.date.as_bytes());
    let k_region = hmac(&k_date, claim.region.as_bytes());
    let k_service = hmac(&k_region, claim.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The signature, in hex, of a string signed as it is (a POST policy).
pub fn sign_string(key: &[u8; 32], text: &str) -> String {
    hex(&hmac(key, text.as_bytes()))
}

/// The signature, in hex, of the string `AWS4-HMAC-SHA256\n{date}\n{scope}\n{hash}`.
pub fn signature(key: &[u8; 32], claim: &Claim, canonical_request: &str) -> String {
    let to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        claim.amz_date,
        claim.scope(),
        sha256_hex(canonical_request.as_bytes())
    );
    hex(&hmac(key, to_sign.as_bytes()))
}

/// The signature of one `aws-chunked` chunk, chained to the previous one.
pub fn chunk_signature(
    key: &[u8; 32],
    claim: &Claim,
    previous: &str,
    chunk_sha256: &str,
) -> String {
    let to_sign = format!(
        "{ALGORITHM}-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256}",
        claim.amz_date,
        claim.scope()
    );
    hex(&hmac(key, to_sign.as_bytes()))
}

/// The signature of the trailer fields of a signed `aws-chunked` body.
pub fn trailer_signature(key: &[u8; 32], claim: &Claim, previous: &str, trailers: &str) -> String {
    let to_sign = format!(
        "{ALGORITHM}-TRAILER\n{}\n{}\n{previous}\n{}",
        claim.amz_date,
        claim.scope(),
        sha256_hex(trailers.as_bytes())
    );
    hex(&hmac(key, to_sign.as_bytes()))
}

/// Compares two signatures in time independent of where they differ.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// The GET example of AWS's "Signature Calculations for the
    /// Authorization Header" page, with its published signature.
    #[test]
    fn aws_get_object_example() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let claim = parse_authorization(auth, "20130524T000000Z").unwrap();
        assert_eq!(claim.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(claim.scope(), "20130524/us-east-1/s3/aws4_request");
        let headers = format!("host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n");
        let canonical = Canonical {
            method: "GET",
            uri: "/test.txt",
            query: "",
            headers: &headers,
            signed_headers: "host;range;x-amz-content-sha256;x-amz-date",
            payload_hash: EMPTY_SHA256,
        };
        let key = signing_key(SECRET, &claim);
        assert_eq!(
            signature(&key, &claim, &canonical.request()),
            claim.signature
        );
    }

    /// The first chunk of AWS's "Signature Calculations for the
    /// Authorization Header: Transferring Payload in Multiple Chunks" example.
    #[test]
    fn aws_chunk_example() {
        let claim = Claim {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
            amz_date: "20130524T000000Z".into(),
            signed_headers: vec![],
            signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
            expires: None,
        };
        let key = signing_key(SECRET, &claim);
        let chunk = vec![b'a'; 65536];
        let got = chunk_signature(&key, &claim, &claim.signature, &sha256_hex(&chunk));
        assert_eq!(
            got,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
    }

    #[test]
    fn canonical_parts() {
        assert_eq!(
            canonical_query(b"prefix=a%20b&list-type=2&delimiter=%2F&x=a+b"),
            "delimiter=%2F&list-type=2&prefix=a%20b&x=a%2Bb"
        );
        assert_eq!(canonical_query(b"uploads"), "uploads=");
        assert_eq!(
            canonical_query(b"X-Amz-Signature=abc&X-Amz-Date=1"),
            "X-Amz-Date=1"
        );
        let mut out = String::new();
        uri_encode("/b/a b+~ü".as_bytes(), true, &mut out);
        assert_eq!(out, "/b/a%20b%2B~%C3%BC");
        let mut v = String::new();
        canonical_value(b"  a   b\tc  ", &mut v);
        assert_eq!(v, "a b c");
    }

    #[test]
    fn malformed_claims() {
        let bad = [
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3,SignedHeaders=host,Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,Signature=00",
            "AWS AK:abc",
        ];
        for value in bad {
            assert!(
                parse_authorization(value, "20130524T000000Z").is_err(),
                "{value}"
            );
        }
        let other_day = "AWS4-HMAC-SHA256 Credential=AK/20130525/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        assert!(parse_authorization(other_day, "20130524T000000Z").is_err());
        assert!(same_signature("ab", "ab") && !same_signature("ab", "ac"));
    }
}
