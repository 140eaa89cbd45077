//! AWS Signature Version 2 (HMAC-SHA1), still what boto3's
//! `generate_presigned_url` writes by default (`AWSAccessKeyId`,
//! `Signature`, `Expires` in the query) and what some old clients send
//! (`Authorization: AWS KEY:SIGNATURE`). Pure functions; `auth` decides.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Query parameters that are part of the signed resource.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// What a request gives the string to sign.
pub struct Signed<'a> {
    pub method: &'a str,
    pub content_md5: &'a str,
    pub content_type: &'a str,
    /// The `Date` header, or for a presigned URL its `Expires`.
    pub date: &'a str,
    /// `x-amz-*` headers: lower-case name, trimmed value; repeated names
    /// are joined by the caller's order.
    pub amz_headers: Vec<(String, String)>,
    /// The path as sent (still encoded).
    pub path: &'a str,
    /// The raw query.
    pub query: &'a [u8],
}

impl Signed<'_> {
    pub fn string_to_sign(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n{}\n",
            self.method,
            self.content_md5.trim(),
            self.content_type.trim(),
            self.date.trim()
        );
        let mut amz: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.amz_headers {
            match amz.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(value);
                }
                None => amz.push((name.clone(), value.clone())),
            }
        }
        amz.sort();
        for (name, value) in amz {
            out.push_str(&format!("{name}:{value}\n"));
        }
        out.push_str(self.path);
        out.push_str(&self.sub_resources());
        out
    }

    /// `?name=value&...` of the signed sub-resources, sorted, values decoded.
    fn sub_resources(&self) -> String {
        let mut subs: Vec<String> = http1::percent::query_pairs(self.query)
            .filter(|(name, _)| SUB_RESOURCES.iter().any(|s| s.as_bytes() == *name))
            .map(|(name, value)| {
                let name = String::from_utf8_lossy(name).into_owned();
                if value.is_empty()
                    && !self
                        .query
                        .windows(name.len() + 1)
                        .any(|w| w == format!("{name}=").as_bytes())
                {
                    return name;
                }
                let mut decoded = Vec::new();
                let _ = http1::percent::decode(value, &mut decoded);
                format!("{name}={}", String::from_utf8_lossy(&decoded))
            })
            .collect();
        subs.sort_by(|a, b| a.split('=').next().cmp(&b.split('=').next()));
        if subs.is_empty() {
            String::new()
        } else {
            format!("?{}", subs.join("&"))
        }
    }
}

/// The signature, base64, of a string to sign.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET example of AWS's "Signing and authenticating REST requests"
    /// page (Signature Version 2), with its published signature.
    #[test]
    fn aws_example() {
        let signed = Signed {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: "Tue, 27 Mar 2007 19:36:42 +0000",
            amz_headers: vec![],
            path: "/awsexamplebucket1/photos/puppy.jpg",
            query: b"",
        };
        assert_eq!(
            signed.string_to_sign(),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                &signed.string_to_sign()
            ),
            "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="
        );
    }

    #[test]
    fn sub_resources_and_amz_headers() {
        let signed = Signed {
            method: "PUT",
            content_md5: "",
            content_type: "text/plain",
            date: "1",
            amz_headers: vec![
                ("x-amz-meta-b".into(), "2".into()),
                ("x-amz-acl".into(), "private".into()),
            ],
            path: "/b/k",
            query: b"uploadId=a%2Fb&partNumber=3&other=1",
        };
        assert_eq!(
            signed.string_to_sign(),
            "PUT\n\ntext/plain\n1\nx-amz-acl:private\nx-amz-meta-b:2\n/b/k?partNumber=3&uploadId=a/b"
        );
        let uploads = Signed {
            query: b"uploads",
            ..signed
        };
        assert!(uploads.string_to_sign().ends_with("/b/k?uploads"));
    }
}
