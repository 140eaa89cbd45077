"""Keys are bytes: every ASCII control and white-space character, the
characters XML and URLs treat specially, and multi-byte UTF-8 go through
put, get, listings (v1, v2, versions; with and without encoding-type=url),
DeleteObjects, copy and multipart uploads exactly as they were sent."""

import base64
import re
import unittest
import urllib.parse

from botocore.exceptions import ClientError

from helpers import client, fresh, raw

ALL_KEYS = sorted(
    [f"c{i:02x}-{chr(i)}-x" for i in range(1, 32)]
    + [chr(i) for i in (9, 10, 13)]
    + ["del-\x7f", " ", "  lead", "trail ", "_ ", "a\nb", "cr\r\nlf", "&<>'\"", "&amp;",
       "100%", "%41", "%ZZ", "%FF%FE", "a+b", "a b+c", "x?y#z", "semi;colon=1", "back\\slash",
       "ü", "日本語/キー", "emoji-🦀", "dir/", "a//b", "~tilde", "*star*"]
)


# Marks a raw request as S3's (it is unsigned: the suite's master has no
# credentials).
S3 = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}


def storable(bucket, key):
    """Whether the volumes can hold the key: its file name, the base64 of
    `/bucket/key` (the original's naming), must not end with `/`."""
    return not base64.b64encode(f"/{bucket}/{key}".encode()).endswith(b"/")


def xml_safe(key):
    """Whether XML 1.0 text can hold the key (no C0 control but tab, line
    feed and carriage return): where S3 does not URL-encode a field, a key
    that is not is written as numeric references, which boto3's parser
    refuses (as it refuses S3's)."""
    return all(c in "\t\n\r" or ord(c) >= 0x20 for c in key)


def unescape(text):
    """XML text as a lenient reader takes it: the five entities and every
    numeric reference, whatever character it names (S3 writes the ones
    XML 1.0 has no room for as references too)."""
    def one(m):
        ref = m.group(1)
        named = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
        if ref in named:
            return named[ref]
        return chr(int(ref[2:], 16) if ref.startswith("#x") else int(ref[1:]))
    return re.sub(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);", one, text)


def elements(doc, tag):
    return [unescape(t) for t in re.findall(rf"<{tag}>(.*?)</{tag}>", doc, re.S)]


class Keys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("keys")
        cls.s3.create_bucket(Bucket=cls.bucket)
        global KEYS
        KEYS = [k for k in ALL_KEYS if storable(cls.bucket, k)]
        cls.refused = [k for k in ALL_KEYS if not storable(cls.bucket, k)]
        for k in KEYS:
            cls.s3.put_object(Bucket=cls.bucket, Key=k, Body=k.encode())
        cls.refusals = []
        for k in cls.refused:
            try:
                cls.s3.put_object(Bucket=cls.bucket, Key=k, Body=b"x")
                cls.refusals.append((k, "stored"))
            except ClientError as e:
                cls.refusals.append((k, e.response["Error"]["Code"]))

    def test_keys_the_volumes_cannot_name_are_refused(self):
        # Which keys these are depends on the bucket's name; with this
        # suite's names, "del-\x7f" is one.
        self.assertTrue(self.refused)
        self.assertEqual(self.refusals, [(k, "InvalidArgument") for k in self.refused])

    def test_each_key_reads_back(self):
        for k in KEYS:
            got = self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read()
            self.assertEqual(got, k.encode(), repr(k))
            self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key=k)["ContentLength"],
                             len(k.encode()), repr(k))

    def test_listings_with_url_encoding(self):
        # boto3 asks for encoding-type=url and decodes what S3 encodes.
        v2 = []
        token = None
        while True:
            args = {"ContinuationToken": token} if token else {}
            page = self.s3.list_objects_v2(Bucket=self.bucket, MaxKeys=7, **args)
            v2 += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        self.assertEqual(v2, KEYS)
        v1, marker = [], ""
        while True:
            page = self.s3.list_objects(Bucket=self.bucket, MaxKeys=7, Marker=marker)
            self.assertEqual(page["Marker"], marker)
            v1 += [o["Key"] for o in page.get("Contents", [])]
            if not page["IsTruncated"]:
                break
            marker = page["Contents"][-1]["Key"]
        self.assertEqual(v1, KEYS)
        versions, key_marker = [], ""
        while True:
            page = self.s3.list_object_versions(Bucket=self.bucket, MaxKeys=7, KeyMarker=key_marker)
            self.assertEqual(page["KeyMarker"], key_marker)
            versions += [v["Key"] for v in page.get("Versions", [])]
            if not page["IsTruncated"]:
                break
            key_marker = page["NextKeyMarker"]
        self.assertEqual(versions, KEYS)
        after = KEYS[10]
        page = self.s3.list_objects_v2(Bucket=self.bucket, StartAfter=after)
        self.assertEqual(page["StartAfter"], after)
        self.assertEqual([o["Key"] for o in page["Contents"]], KEYS[11:])

    def test_prefixes_and_delimiters_echo_as_s3_does(self):
        for k in KEYS:
            calls = [(self.s3.list_objects_v2, "Contents"), (self.s3.list_object_versions, "Versions")]
            if xml_safe(k):
                calls.append((self.s3.list_objects, "Contents"))
            for call, field in calls:
                page = call(Bucket=self.bucket, Prefix=k)
                self.assertEqual(page["Prefix"], k, (call.__name__, repr(k)))
                self.assertEqual(page[field][0]["Key"], k, (call.__name__, repr(k)))
            # v1 echoes the prefix as text even under encoding-type=url (and
            # boto3 does not decode it); its keys are encoded.
            quoted = urllib.parse.quote(k, safe="")
            status, _, doc = raw("GET", f"/{self.bucket}?encoding-type=url&prefix={quoted}", S3)
            self.assertEqual(status, 200, doc)
            doc = doc.decode()
            self.assertEqual(elements(doc, "Prefix"), [k], repr(k))
            self.assertEqual([urllib.parse.unquote(x) for x in elements(doc, "Key")],
                             [x for x in KEYS if x.startswith(k)])
        for delim in ["\n", " ", "-", "&", "%", "+"]:
            for call in [self.s3.list_objects, self.s3.list_objects_v2, self.s3.list_object_versions]:
                page = call(Bucket=self.bucket, Delimiter=delim)
                self.assertEqual(page["Delimiter"], delim, (call.__name__, repr(delim)))
                listed = [o["Key"] for o in page.get("Contents", page.get("Versions", []))]
                grouped = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
                want = sorted({k[:k.index(delim) + 1] for k in KEYS if delim in k})
                self.assertEqual(grouped, want, (call.__name__, repr(delim)))
                self.assertEqual(listed, [k for k in KEYS if delim not in k])

    def test_listings_without_encoding(self):
        path = f"/{self.bucket}"
        for query, tag in [("list-type=2", "Key"), ("", "Key"), ("versions", "Key")]:
            status, _, doc = raw("GET", f"{path}?{query}", S3)
            self.assertEqual(status, 200, doc)
            self.assertEqual(elements(doc.decode(), tag), KEYS, query)
        # The prefix as sent, echoed as text.
        prefix = "c01-\x01"
        status, _, doc = raw("GET", f"{path}?prefix={urllib.parse.quote(prefix, safe='')}", S3)
        self.assertEqual(elements(doc.decode(), "Prefix"), [prefix])

    def test_copy_and_multipart_keep_keys(self):
        # Into buckets of their own whose names are as long as this one's
        # (so the same keys can be stored), the listings above unchanged.
        copies, uploads = fresh("kcpy"), fresh("kmpu")
        for b in (copies, uploads):
            self.s3.create_bucket(Bucket=b)
        for k in KEYS:
            self.s3.copy_object(Bucket=copies, Key=k, CopySource={"Bucket": self.bucket, "Key": k})
            got = self.s3.get_object(Bucket=copies, Key=k)["Body"].read()
            self.assertEqual(got, k.encode(), repr(k))
        for k in KEYS:
            up = self.s3.create_multipart_upload(Bucket=uploads, Key=k)["UploadId"]
            listed = self.s3.list_multipart_uploads(Bucket=uploads, Prefix=k, EncodingType="url")
            self.assertEqual([urllib.parse.unquote(u["Key"]) for u in listed["Uploads"]], [k])
            etag = self.s3.upload_part(Bucket=uploads, Key=k, UploadId=up, PartNumber=1,
                                       Body=k.encode())["ETag"]
            parts = self.s3.list_parts(Bucket=uploads, Key=k, UploadId=up)
            done = self.s3.complete_multipart_upload(
                Bucket=uploads, Key=k, UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
            if xml_safe(k):
                self.assertEqual((parts["Key"], done["Key"]), (k, k))
            got = self.s3.get_object(Bucket=uploads, Key=k)["Body"].read()
            self.assertEqual(got, k.encode(), repr(k))
        listed = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=uploads):
            listed += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(listed, KEYS)

    def test_z_delete_objects_empties_the_bucket(self):
        # Last (unittest runs tests by name): everything goes, then the bucket.
        everything = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            everything += [o["Key"] for o in page.get("Contents", [])]
        self.assertTrue(set(KEYS) <= set(everything))
        for i in range(0, len(everything), 50):
            batch = [{"Key": k} for k in everything[i:i + 50]]
            r = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            self.assertEqual(r.get("Errors", []), [])
        self.assertEqual(self.s3.list_objects_v2(Bucket=self.bucket)["KeyCount"], 0)
        self.s3.delete_bucket(Bucket=self.bucket)


class Refused(unittest.TestCase):
    def test_a_nul_key_is_refused_or_kept(self):
        s3 = client()
        bucket = fresh("nul")
        s3.create_bucket(Bucket=bucket)
        try:
            s3.put_object(Bucket=bucket, Key="a\x00b", Body=b"v")
        except ClientError as e:
            self.assertLess(e.response["ResponseMetadata"]["HTTPStatusCode"], 500)
            self.assertEqual(s3.list_objects_v2(Bucket=bucket)["KeyCount"], 0)
            return
        self.assertEqual(s3.get_object(Bucket=bucket, Key="a\x00b")["Body"].read(), b"v")
        self.assertEqual([o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]], ["a\x00b"])


if __name__ == "__main__":
    unittest.main()
