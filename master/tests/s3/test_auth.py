"""With `--s3-credentials`: signed requests work (SigV4 headers, SigV4 and
SigV2 presigned URLs, signed aws-chunked bodies), and a request without a
valid signature gets the exact S3 error and nothing is read or written
(docs/s3.md, "Credentials")."""

import datetime
import hashlib
import hmac
import os
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from botocore.exceptions import ClientError

from helpers import ACCESS, ENDPOINT, SECRET, client, files_of, fresh, raw

S3_ONLY = os.environ["MKV_S3_ENDPOINT"]


def code(err):
    return err.exception.response["Error"]["Code"]


def error_code(answer):
    text = answer.decode()
    return text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else text


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_headers(method, path, payload_hash, when=None, extra=None):
    """Headers of a request signed here by hand (SigV4, in the header)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = hmac256(("AWS4" + SECRET).encode(), amz_date[:8])
    for part in ("us-east-1", "s3", "aws4_request"):
        key = hmac256(key, part)
    headers = {"host": urllib.parse.urlsplit(ENDPOINT).netloc, "x-amz-content-sha256": payload_hash,
               "x-amz-date": amz_date, **(extra or {})}
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           names, payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, SignedHeaders={names}, Signature={signature}"
    del headers["host"]
    return headers


class SignedChunks:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signed here by hand (the AWS
    documentation's algorithm, independent of the server's code)."""

    def __init__(self, secret, method, path, data, chunk=64 * 1024):
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.amz_date = self.now.strftime("%Y%m%dT%H%M%SZ")
        self.day = self.amz_date[:8]
        self.scope = f"{self.day}/us-east-1/s3/aws4_request"
        key = hmac256(("AWS4" + secret).encode(), self.day)
        for part in ("us-east-1", "s3", "aws4_request"):
            key = hmac256(key, part)
        self.key = key
        host = urllib.parse.urlsplit(ENDPOINT).netloc
        self.headers = {
            "host": host,
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "x-amz-date": self.amz_date,
            "x-amz-decoded-content-length": str(len(data)),
            "content-encoding": "aws-chunked",
        }
        signed = ";".join(sorted(self.headers))
        canonical = "\n".join([method, path, "", "".join(f"{k}:{self.headers[k]}\n" for k in sorted(self.headers)),
                               signed, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
        seed = self.sign("AWS4-HMAC-SHA256\n" + self.amz_date + "\n" + self.scope + "\n"
                         + hashlib.sha256(canonical.encode()).hexdigest())
        self.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS}/{self.scope}, "
                                         f"SignedHeaders={signed}, Signature={seed}")
        self.body = b""
        previous = seed
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
        for piece in pieces:
            to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous,
                                 hashlib.sha256(b"").hexdigest(), hashlib.sha256(piece).hexdigest()])
            previous = self.sign(to_sign)
            self.body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n"
        del self.headers["host"]

    def sign(self, text):
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()


class Signatures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("auth")
        cls.s3.create_bucket(Bucket=cls.bucket)

    def assert_nothing_stored(self, key):
        self.assertEqual(files_of(f"/{self.bucket}/{key}"), [], key)
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=self.bucket, Key=key)

    def test_signed_requests_work(self):
        self.s3.put_object(Bucket=self.bucket, Key="ok", Body=b"signed")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="ok")["Body"].read(), b"signed")
        for s3 in (self.s3, client(signature_version="s3v4")):
            url = s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "ok"})
            self.assertEqual(urllib.request.urlopen(url).read(), b"signed")

    def test_wrong_secret_unknown_key_no_signature(self):
        from helpers import boto3, Config
        wrong = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=ACCESS, aws_secret_access_key="nope",
                             region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
        with self.assertRaises(ClientError) as e:
            wrong.put_object(Bucket=self.bucket, Key="w", Body=b"x")
        self.assertEqual(code(e), "SignatureDoesNotMatch")
        stranger = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id="stranger",
                                aws_secret_access_key=SECRET, region_name="us-east-1",
                                config=Config(retries={"max_attempts": 1}))
        with self.assertRaises(ClientError) as e:
            stranger.put_object(Bucket=self.bucket, Key="w", Body=b"x")
        self.assertEqual(code(e), "InvalidAccessKeyId")
        with self.assertRaises(ClientError) as e:
            wrong.get_object(Bucket=self.bucket, Key="ok")
        self.assertEqual(code(e), "SignatureDoesNotMatch")
        status, headers, answer = raw("GET", f"/{self.bucket}?list-type=2")
        self.assertEqual((status, error_code(answer)), (403, "AccessDenied"))
        self.assertIn("x-amz-request-id", {k.lower() for k in headers})
        status, _, answer = raw("PUT", f"/{self.bucket}/w", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"x")
        self.assertEqual((status, error_code(answer)), (403, "AccessDenied"))
        self.assert_nothing_stored("w")

    def test_post_object_forms_are_signed(self):
        import base64
        import json
        import requests
        post = lambda form, data: requests.post(form["url"], data=form["fields"],  # noqa: E731
                                               files={"file": ("f", data)}, timeout=60)
        # boto3 signs forms with V2 unless told s3v4.
        legacy = self.s3.generate_presigned_post(self.bucket, "form-legacy")
        self.assertIn("signature", legacy["fields"])
        self.assertEqual(post(legacy, b"legacy").status_code, 204)
        form = client(signature_version="s3v4").generate_presigned_post(self.bucket, "form-v4")
        self.assertIn("x-amz-signature", form["fields"])
        r = post(form, b"signed v4")
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="form-v4")["Body"].read(), b"signed v4")
        forged = dict(form, fields=dict(form["fields"], **{"x-amz-signature": "0" * 64}))
        r = post(forged, b"forged")
        self.assertEqual((r.status_code, error_code(r.content)), (403, "SignatureDoesNotMatch"), r.text)
        unsigned = dict(form, fields={"key": "form-unsigned"})
        r = post(unsigned, b"unsigned")
        self.assertEqual((r.status_code, error_code(r.content)), (403, "AccessDenied"), r.text)
        # Signature Version 2: the policy signed with HMAC-SHA1.
        doc = {"expiration": "2999-01-01T00:00:00Z", "conditions": [{"bucket": self.bucket}, {"key": "form-v2"}]}
        policy = base64.b64encode(json.dumps(doc).encode()).decode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        v2 = {"url": form["url"], "fields": {"key": "form-v2", "AWSAccessKeyId": ACCESS, "policy": policy,
                                            "signature": sig}}
        r = post(v2, b"signed v2")
        self.assertEqual(r.status_code, 204, r.text)
        stranger = dict(v2, fields=dict(v2["fields"], AWSAccessKeyId="stranger"))
        r = post(stranger, b"x")
        self.assertEqual((r.status_code, error_code(r.content)), (403, "InvalidAccessKeyId"), r.text)
        for key in ("form-unsigned",):
            self.assert_nothing_stored(key)

    def test_presigned_urls_tampered_or_expired(self):
        s3v4 = client(signature_version="s3v4")
        self.s3.put_object(Bucket=self.bucket, Key="p", Body=b"p")
        url = s3v4.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "p"})
        for bad in (url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), url.replace("/p?", "/ok?")):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(bad)
            self.assertEqual(e.exception.code, 403)
        for s3 in (self.s3, s3v4):
            url = s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "p"}, ExpiresIn=1)
            time.sleep(2.1)
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url)
            self.assertEqual((e.exception.code, error_code(e.exception.read())), (403, "AccessDenied"))
        url = s3v4.generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": "pp"})
        bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=1")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(bad, data=b"evil", method="PUT"))
        self.assertEqual(e.exception.code, 403)
        self.assert_nothing_stored("pp")

    def test_clock_skew(self):
        data = b"x"
        path = f"/{self.bucket}/skew"
        now = datetime.datetime.now(datetime.timezone.utc)
        fresh_headers = signed_headers("PUT", path, hashlib.sha256(data).hexdigest(), now)
        self.assertEqual(raw("PUT", path, fresh_headers, data)[0], 200, "the hand signing is right")
        self.s3.delete_object(Bucket=self.bucket, Key="skew")
        old = signed_headers("PUT", path, hashlib.sha256(data).hexdigest(), now - datetime.timedelta(hours=1))
        status, _, answer = raw("PUT", path, old, data)
        self.assertEqual((status, error_code(answer)), (403, "RequestTimeTooSkewed"))
        self.assert_nothing_stored("skew")

    def test_signed_chunks(self):
        data = os.urandom(200_000)
        path = f"/{self.bucket}/chunked"
        signed = SignedChunks(SECRET, "PUT", path, data)
        status, _, answer = raw("PUT", path, signed.headers, signed.body)
        self.assertEqual(status, 200, answer)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="chunked")["Body"].read(), data)
        # One byte of the second chunk changed: its signature no longer holds.
        signed = SignedChunks(SECRET, "PUT", f"/{self.bucket}/tampered", data)
        body = bytearray(signed.body)
        body[70_000] ^= 1
        status, _, answer = raw("PUT", f"/{self.bucket}/tampered", signed.headers, bytes(body))
        self.assertEqual((status, error_code(answer)), (403, "SignatureDoesNotMatch"))
        self.assert_nothing_stored("tampered")

    def test_payload_hash_checked(self):
        # Signed properly, over a payload hash that is not the body's.
        path = f"/{self.bucket}/liar"
        headers = signed_headers("PUT", path, hashlib.sha256(b"other").hexdigest())
        status, _, answer = raw("PUT", path, headers, b"the real body")
        self.assertEqual((status, error_code(answer)), (400, "XAmzContentSHA256Mismatch"))
        self.assert_nothing_stored("liar")

    def test_s3_port_takes_every_request_as_s3(self):
        url = urllib.parse.urlsplit(S3_ONLY)
        import http.client
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("PUT", f"/{self.bucket}/plain", body=b"x")
        r = conn.getresponse()
        self.assertEqual((r.status, error_code(r.read())), (403, "AccessDenied"))
        self.assert_nothing_stored("plain")
        from helpers import boto3, Config
        s3 = boto3.client("s3", endpoint_url=S3_ONLY, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                          region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
        s3.put_object(Bucket=self.bucket, Key="via-s3-port", Body=b"y")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="via-s3-port")["Body"].read(), b"y")


if __name__ == "__main__":
    unittest.main()
