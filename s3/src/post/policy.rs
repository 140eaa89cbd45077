//! A POST Object's policy: its signature (SigV4, as boto3's
//! `generate_presigned_post` makes it, or V2), its expiry, and its
//! conditions over the form's fields (`{"field": "value"}`, `["eq", "$field",
//! "value"]`, `["starts-with", "$field", "prefix"]`,
//! `["content-length-range", min, max]`). With a policy, every field but
//! the signature's own, `policy`, `file` and `x-ignore-*` must be named by a
//! condition, as S3 requires.

use base64::Engine;
use serde_json::Value;

use crate::auth::Credentials;
use crate::error::{Code, S3Error};
use crate::sigv2;
use crate::sigv4::{self, Claim};
use crate::time;

/// The form's fields, names lower-case, `key` with `${filename}` replaced.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The sizes a policy allows the file.
#[derive(Debug, PartialEq, Eq)]
pub struct Limits {
    pub min: u64,
    pub max: u64,
}

fn denied(why: &str) -> S3Error {
    S3Error::new(
        Code::AccessDenied,
        format!("Invalid according to Policy: {why}"),
    )
}

/// Checks the form's policy and signature; the sizes it allows the file.
/// Without credentials a signature is not needed, but a policy given is
/// still kept to.
pub fn check(
    creds: Option<&Credentials>,
    bucket: &str,
    fields: &Fields,
) -> Result<Limits, S3Error> {
    let policy = fields.get("policy");
    if let Some(creds) = creds {
        let policy = policy.ok_or_else(|| {
            S3Error::access_denied("Bucket POST must contain a field named 'policy'")
        })?;
        verify_signature(creds, fields, policy)?;
    }
    let Some(policy) = policy else {
        return Ok(Limits {
            min: 0,
            max: u64::MAX,
        });
    };
    let doc = base64::engine::general_purpose::STANDARD
        .decode(policy.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Invalid JSON."))?;
    let expiration = doc
        .get("expiration")
        .and_then(Value::as_str)
        .and_then(parse_expiration)
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Invalid 'expiration' value."))?;
    if time::now_ms() / 1000 > expiration {
        return Err(denied("Policy expired."));
    }
    let conditions = doc
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Missing 'conditions'."))?;
    let mut limits = Limits {
        min: 0,
        max: u64::MAX,
    };
    let mut named: Vec<String> = Vec::new();
    for c in conditions {
        if let Some(name) = condition(c, bucket, fields, &mut limits)? {
            named.push(name);
        }
    }
    let free = |n: &str| {
        matches!(
            n,
            "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid" | "file"
        ) || n.starts_with("x-ignore-")
    };
    if let Some((extra, _)) = fields
        .0
        .iter()
        .find(|(n, _)| !free(n) && !named.contains(n))
    {
        return Err(denied(&format!("Extra input fields: {extra}")));
    }
    Ok(limits)
}

/// One condition, checked; the field it names, if any.
fn condition(
    c: &Value,
    bucket: &str,
    fields: &Fields,
    limits: &mut Limits,
) -> Result<Option<String>, S3Error> {
    let bad = || S3Error::invalid_argument(format!("Invalid Policy: Invalid Condition: {c}"));
    let value_of = |name: &str| -> String {
        if name == "bucket" {
            bucket.to_string()
        } else {
            fields.get(name).unwrap_or_default().to_string()
        }
    };
    let failed = || denied(&format!("Policy Condition failed: {c}"));
    if let Some(map) = c.as_object() {
        let (name, want) = map
            .iter()
            .next()
            .filter(|_| map.len() == 1)
            .ok_or_else(bad)?;
        let name = name.to_ascii_lowercase();
        let want = want.as_str().ok_or_else(bad)?;
        if value_of(&name) != want {
            return Err(failed());
        }
        return Ok(Some(name));
    }
    let list = c.as_array().ok_or_else(bad)?;
    let op = list.first().and_then(Value::as_str).ok_or_else(bad)?;
    match op.to_ascii_lowercase().as_str() {
        "content-length-range" => {
            let n = |i: usize| list.get(i).and_then(Value::as_u64).ok_or_else(bad);
            let (min, max) = (n(1)?, n(2)?);
            limits.min = limits.min.max(min);
            limits.max = limits.max.min(max);
            Ok(None)
        }
        op @ ("eq" | "starts-with") if list.len() == 3 => {
            let name = list[1]
                .as_str()
                .and_then(|n| n.strip_prefix('$'))
                .ok_or_else(bad)?;
            let name = name.to_ascii_lowercase();
            let want = list[2].as_str().ok_or_else(bad)?;
            let got = value_of(&name);
            let holds = match op {
                "eq" => got == want,
                // A list of values (Content-Type) holds if each does.
                _ if name == "content-type" => got.split(',').all(|v| v.trim().starts_with(want)),
                _ => got.starts_with(want),
            };
            if !holds {
                return Err(failed());
            }
            Ok(Some(name))
        }
        _ => Err(bad()),
    }
}

/// `2026-12-08T12:00:00.000Z` (or without the fraction): seconds since the
/// epoch.
fn parse_expiration(text: &str) -> Option<u64> {
    let (whole, _) = text
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((text.trim_end_matches('Z'), ""));
    let compact: String = whole.chars().filter(|c| *c != '-' && *c != ':').collect();
    time::parse_amz_date(&format!("{compact}Z"))
}

fn verify_signature(creds: &Credentials, fields: &Fields, policy: &str) -> Result<(), S3Error> {
    let secret = |access: &str| {
        creds.secret(access).ok_or_else(|| {
            S3Error::new(
                Code::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })
    };
    if let Some(access) = fields.get("awsaccesskeyid") {
        let given = fields.get("signature").unwrap_or_default();
        let expected = sigv2::signature(secret(access)?, policy);
        return match sigv4::same_signature(&expected, given) {
            true => Ok(()),
            false => Err(S3Error::signature_mismatch()),
        };
    }
    if fields.get("x-amz-algorithm") != Some(sigv4::ALGORITHM) {
        return Err(S3Error::access_denied(
            "Bucket POST must contain x-amz-algorithm AWS4-HMAC-SHA256 (or AWSAccessKeyId and signature)",
        ));
    }
    let credential = fields.get("x-amz-credential").unwrap_or_default();
    let parts: Vec<&str> = credential.split('/').collect();
    let [access, date, region, service, "aws4_request"] = parts[..] else {
        return Err(S3Error::invalid_argument("Invalid x-amz-credential"));
    };
    let claim = Claim {
        access_key: access.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        amz_date: fields.get("x-amz-date").unwrap_or_default().to_string(),
        signed_headers: Vec::new(),
        signature: fields
            .get("x-amz-signature")
            .unwrap_or_default()
            .to_string(),
        expires: None,
    };
    let key = sigv4::signing_key(secret(access)?, &claim);
    let expected = sigv4::sign_string(&key, policy);
    match sigv4::same_signature(&expected, &claim.signature) {
        true => Ok(()),
        false => Err(S3Error::signature_mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn policy(conditions: &str, expiration: &str) -> String {
        let doc = format!("{{\"expiration\": \"{expiration}\", \"conditions\": {conditions}}}");
        base64::engine::general_purpose::STANDARD.encode(doc)
    }

    #[test]
    fn conditions_are_kept_to() {
        let p = policy(
            r#"[{"bucket": "b"}, ["starts-with", "$key", "up/"], ["content-length-range", 1, 100], ["eq", "$Content-Type", "text/plain"]]"#,
            "2999-01-01T00:00:00.000Z",
        );
        let ok = fields(&[
            ("key", "up/x"),
            ("policy", &p),
            ("content-type", "text/plain"),
        ]);
        assert_eq!(check(None, "b", &ok).unwrap(), Limits { min: 1, max: 100 });
        for (bucket, f) in [
            (
                "other",
                fields(&[
                    ("key", "up/x"),
                    ("policy", &p),
                    ("content-type", "text/plain"),
                ]),
            ),
            (
                "b",
                fields(&[
                    ("key", "down/x"),
                    ("policy", &p),
                    ("content-type", "text/plain"),
                ]),
            ),
            (
                "b",
                fields(&[
                    ("key", "up/x"),
                    ("policy", &p),
                    ("content-type", "image/png"),
                ]),
            ),
            (
                "b",
                fields(&[
                    ("key", "up/x"),
                    ("policy", &p),
                    ("content-type", "text/plain"),
                    ("acl", "private"),
                ]),
            ),
        ] {
            assert_eq!(
                check(None, bucket, &f).unwrap_err().code,
                Code::AccessDenied
            );
        }
        let old = policy(r#"[{"bucket": "b"}]"#, "2001-01-01T00:00:00Z");
        let e = check(None, "b", &fields(&[("policy", &old)])).unwrap_err();
        assert!(e.message.contains("expired"), "{e}");
        let bad = check(None, "b", &fields(&[("policy", "not base64 json")])).unwrap_err();
        assert_eq!(bad.code, Code::InvalidArgument);
    }

    #[test]
    fn signatures_are_checked() {
        let creds = Credentials::parse("user password").unwrap();
        let p = policy(r#"[{"bucket": "b"}]"#, "2999-01-01T00:00:00Z");
        let v2 = sigv2::signature("password", &p);
        let signed = fields(&[
            ("policy", &p),
            ("awsaccesskeyid", "user"),
            ("signature", &v2),
        ]);
        assert!(check(Some(&creds), "b", &signed).is_ok());
        let forged = fields(&[
            ("policy", &p),
            ("awsaccesskeyid", "user"),
            ("signature", "AAAA"),
        ]);
        assert_eq!(
            check(Some(&creds), "b", &forged).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        let unsigned = fields(&[("policy", &p)]);
        assert_eq!(
            check(Some(&creds), "b", &unsigned).unwrap_err().code,
            Code::AccessDenied
        );
    }
}
