//! Who may do what: with `--s3-credentials`, every S3 request must carry a
//! valid SigV4 signature (in its `Authorization` header, or presigned in
//! its query) from a known access key, within 15 minutes of our clock;
//! anything else is refused before a byte is read or written. Without
//! credentials nothing is checked, as in the original.

use std::collections::HashMap;
use std::path::Path;

use http1::RequestHead;

use super::error::{Code, S3Error};
use super::request::S3Req;
use super::sigv2;
use super::sigv4::{self, Canonical, Claim};
use crate::time;

/// How far a request's date may be from our clock.
const MAX_SKEW_SECS: u64 = 15 * 60;

/// Access keys and their secrets.
#[derive(Debug, Default)]
pub struct Credentials {
    secrets: HashMap<String, String>,
}

impl Credentials {
    /// One pair per line, `ACCESS_KEY SECRET` or `ACCESS_KEY:SECRET`;
    /// blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let mut secrets = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let pair = line
                .split_once(':')
                .or_else(|| line.split_once(char::is_whitespace));
            match pair.map(|(a, s)| (a.trim(), s.trim())) {
                Some((access, secret)) if !access.is_empty() && !secret.is_empty() => {
                    secrets.insert(access.to_string(), secret.to_string());
                }
                _ => return Err(format!("line {}: want ACCESS_KEY SECRET", i + 1)),
            }
        }
        if secrets.is_empty() {
            return Err("no access keys in it".into());
        }
        Ok(Credentials { secrets })
    }

    /// The secret of an access key.
    pub fn secret(&self, access: &str) -> Option<&str> {
        self.secrets.get(access).map(String::as_str)
    }

    pub fn load(path: &Path) -> Result<Credentials, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        Credentials::parse(&text)
    }
}

/// A verified signature: what signed chunks are checked against.
pub struct Signer {
    pub key: [u8; 32],
    pub claim: Claim,
}

/// Checks a request's signature; `Ok(None)` when no credentials are set.
pub fn verify(creds: Option<&Credentials>, req: &S3Req<'_>) -> Result<Option<Signer>, S3Error> {
    let Some(creds) = creds else { return Ok(None) };
    let head = req.head;
    let v2_header = head
        .header("authorization")
        .is_some_and(|a| a.starts_with(b"AWS "));
    if v2_header || (req.has("Signature") && req.has("AWSAccessKeyId")) {
        verify_v2(creds, req)?;
        return Ok(None);
    }
    let presigned = sigv4::parse_presigned(|name| req.param(name).map(str::to_string))
        .map_err(|e| S3Error::new(Code::AuthorizationQueryParametersError, e.0))?;
    let claim = match presigned {
        Some(claim) => claim,
        None => header_claim(head)?,
    };
    check_time(&claim)?;
    if claim.service != "s3" {
        return Err(S3Error::new(
            Code::AuthorizationHeaderMalformed,
            "the credential scope's service must be s3",
        ));
    }
    let secret = creds.secrets.get(&claim.access_key).ok_or_else(|| {
        S3Error::new(
            Code::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    })?;
    let key = sigv4::signing_key(secret, &claim);
    let payload = match claim.expires {
        Some(_) => "UNSIGNED-PAYLOAD".to_string(),
        None => req.header("x-amz-content-sha256").ok_or_else(|| {
            S3Error::invalid_request(
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?,
    };
    let query = sigv4::canonical_query(head.query().unwrap_or_default());
    let (headers, signed) = canonical_headers(head, &claim);
    let raw_path = String::from_utf8_lossy(head.path()).into_owned();
    let mut reencoded = String::new();
    sigv4::uri_encode(&req.path, true, &mut reencoded);
    for uri in [raw_path.as_str(), reencoded.as_str()] {
        let canonical = Canonical {
            method: head.method_name(),
            uri,
            query: &query,
            headers: &headers,
            signed_headers: &signed,
            payload_hash: &payload,
        };
        let expected = sigv4::signature(&key, &claim, &canonical.request());
        if sigv4::same_signature(&expected, &claim.signature) {
            return Ok(Some(Signer { key, claim }));
        }
    }
    Err(S3Error::signature_mismatch())
}

/// Signature Version 2, in the query (`Expires` not past) or the
/// `Authorization` header (its date within the allowed skew).
fn verify_v2(creds: &Credentials, req: &S3Req<'_>) -> Result<(), S3Error> {
    let head = req.head;
    let (access, signature, date) = match head.header("authorization") {
        Some(auth) if auth.starts_with(b"AWS ") => v2_header(req, auth)?,
        _ => {
            let expires = req.param("Expires").unwrap_or_default().to_string();
            let until: u64 = expires
                .parse()
                .map_err(|_| S3Error::access_denied("Expires must be a time"))?;
            if time::now_ms() / 1000 > until {
                return Err(S3Error::access_denied("Request has expired"));
            }
            let access = req.param("AWSAccessKeyId").unwrap_or_default().to_string();
            let signature = req.param("Signature").unwrap_or_default().to_string();
            (access, signature, expires)
        }
    };
    let secret = creds.secrets.get(&access).ok_or_else(unknown_key)?;
    let amz_headers = head
        .headers()
        .filter(|(n, _)| n.len() > 6 && n[..6].eq_ignore_ascii_case(b"x-amz-"))
        .map(|(n, v)| {
            let name = String::from_utf8_lossy(n).to_ascii_lowercase();
            (name, String::from_utf8_lossy(v).trim().to_string())
        })
        .collect();
    let path = String::from_utf8_lossy(head.path()).into_owned();
    let signed = sigv2::Signed {
        method: head.method_name(),
        content_md5: &req.header("content-md5").unwrap_or_default(),
        content_type: &req.header("content-type").unwrap_or_default(),
        date: &date,
        amz_headers,
        path: &path,
        query: head.query().unwrap_or_default(),
    };
    let expected = sigv2::signature(secret, &signed.string_to_sign());
    if !sigv4::same_signature(&expected, &signature) {
        return Err(S3Error::signature_mismatch());
    }
    Ok(())
}

/// `Authorization: AWS KEY:SIGNATURE`: the key, the signature, and the
/// date the string to sign holds (empty when `x-amz-date` is given).
fn v2_header(req: &S3Req<'_>, auth: &[u8]) -> Result<(String, String, String), S3Error> {
    let auth = String::from_utf8_lossy(&auth[4..]).into_owned();
    let (access, sig) = auth
        .split_once(':')
        .ok_or_else(|| S3Error::invalid_argument("Authorization is AWS KEY:SIGNATURE"))?;
    let amz_date = req.header("x-amz-date");
    let date = if amz_date.is_some() {
        String::new()
    } else {
        req.header("date").unwrap_or_default()
    };
    let signed_at = amz_date
        .or_else(|| req.header("date"))
        .and_then(|d| time::parse_http_date(d.as_bytes()))
        .ok_or_else(|| S3Error::access_denied("the request has no date"))?;
    if signed_at.abs_diff(time::now_ms() / 1000) > MAX_SKEW_SECS {
        return Err(too_skewed());
    }
    Ok((access.to_string(), sig.trim().to_string(), date))
}

fn unknown_key() -> S3Error {
    S3Error::new(
        Code::InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
}

fn header_claim(head: &RequestHead) -> Result<Claim, S3Error> {
    let Some(auth) = head.header("authorization") else {
        return Err(S3Error::access_denied("the request is not signed"));
    };
    let auth = String::from_utf8_lossy(auth);
    let amz_date = match head.header("x-amz-date") {
        Some(d) => String::from_utf8_lossy(d).into_owned(),
        None => head
            .header("date")
            .and_then(time::parse_http_date)
            .map(|secs| amz_date(secs * 1000))
            .ok_or_else(|| S3Error::access_denied("the request has no date"))?,
    };
    sigv4::parse_authorization(&auth, &amz_date)
        .map_err(|e| S3Error::new(Code::AuthorizationHeaderMalformed, e.0))
}

/// `yyyymmddThhmmssZ` of a time.
fn amz_date(ms: u64) -> String {
    let iso = time::iso8601(ms);
    format!(
        "{}{}{}T{}{}{}Z",
        &iso[0..4],
        &iso[5..7],
        &iso[8..10],
        &iso[11..13],
        &iso[14..16],
        &iso[17..19]
    )
}

fn check_time(claim: &Claim) -> Result<(), S3Error> {
    let signed_at = time::parse_amz_date(&claim.amz_date)
        .ok_or_else(|| S3Error::access_denied("the request's date is malformed"))?;
    let now = time::now_ms() / 1000;
    if let Some(expires) = claim.expires {
        if now > signed_at + expires {
            return Err(S3Error::access_denied("Request has expired"));
        }
        if signed_at > now + MAX_SKEW_SECS {
            return Err(too_skewed());
        }
    } else if signed_at.abs_diff(now) > MAX_SKEW_SECS {
        return Err(too_skewed());
    }
    Ok(())
}

fn too_skewed() -> S3Error {
    S3Error::new(
        Code::RequestTimeTooSkewed,
        "The difference between the request time and the server's time is too large.",
    )
}

/// `name:value\n` for each signed header, and the signed header list.
fn canonical_headers(head: &RequestHead, claim: &Claim) -> (String, String) {
    let mut out = String::new();
    for name in &claim.signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in head
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            if !first {
                out.push(',');
            }
            first = false;
            sigv4::canonical_value(value, &mut out);
        }
        out.push('\n');
    }
    (out, claim.signed_headers.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_files() {
        let c = Credentials::parse("# keys\nAKID secret/with+chars\n\nuser:password\n").unwrap();
        assert_eq!(
            c.secrets.get("AKID").map(String::as_str),
            Some("secret/with+chars")
        );
        assert_eq!(c.secrets.get("user").map(String::as_str), Some("password"));
        assert!(Credentials::parse("onlyakey\n").is_err());
        assert!(Credentials::parse("# nothing\n").is_err());
        assert_eq!(amz_date(1_796_292_604_000), "20261203T101004Z");
    }
}
