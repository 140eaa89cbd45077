"""Every S3 operation of docs/s3.md through boto3: buckets, objects,
checksums (headers and trailers), conditional and ranged reads, copies,
listings, multipart uploads, presigned URLs, and the exact errors."""

import datetime
import hashlib
import unittest
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from botocore.exceptions import ClientError

from helpers import (aws_chunked, body, client, crc32_b64, files_of, fresh, md5_hex, raw,
                     staging_files, trailer_checksums)


def code(err):
    return err.exception.response["Error"]["Code"]


class Buckets(unittest.TestCase):
    def setUp(self):
        self.s3 = client()

    def test_create_head_list_delete(self):
        name = fresh("b")
        self.s3.create_bucket(Bucket=name)
        self.s3.create_bucket(Bucket=name)  # again: as us-east-1, fine
        self.assertEqual(self.s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"], 200)
        names = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertIn(name, names)
        self.assertIsNone(self.s3.get_bucket_location(Bucket=name)["LocationConstraint"])
        self.s3.put_object(Bucket=name, Key="k", Body=b"v")
        with self.assertRaises(ClientError) as e:
            self.s3.delete_bucket(Bucket=name)
        self.assertEqual(code(e), "BucketNotEmpty")
        self.s3.delete_object(Bucket=name, Key="k")
        self.s3.delete_bucket(Bucket=name)
        with self.assertRaises(ClientError) as e:
            self.s3.head_bucket(Bucket=name)
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        with self.assertRaises(ClientError) as e:
            self.s3.delete_bucket(Bucket=name)
        self.assertEqual(code(e), "NoSuchBucket")
        with self.assertRaises(ClientError) as e:
            self.s3.create_bucket(Bucket="Not_Valid")
        self.assertEqual(code(e), "InvalidBucketName")

    def test_a_bucket_s3_wrote_to_stays_when_emptied(self):
        name = fresh("b")
        self.s3.put_object(Bucket=name, Key="k", Body=b"v")
        self.s3.delete_object(Bucket=name, Key="k")
        self.assertEqual(self.s3.list_objects_v2(Bucket=name)["KeyCount"], 0)
        with self.assertRaises(ClientError) as e:
            self.s3.list_objects_v2(Bucket=fresh("never"))
        self.assertEqual(code(e), "NoSuchBucket")


class Objects(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("o")
        cls.s3.create_bucket(Bucket=cls.bucket)

    def test_put_get_head_with_metadata(self):
        data = body(100_000, 1)
        put = self.s3.put_object(Bucket=self.bucket, Key="dir/obj", Body=data,
                                 ContentType="text/plain", Metadata={"color": "blue"},
                                 ContentDisposition="attachment", CacheControl="no-cache")
        self.assertEqual(put["ETag"], f'"{md5_hex(data)}"')
        got = self.s3.get_object(Bucket=self.bucket, Key="dir/obj")
        self.assertEqual(got["Body"].read(), data)
        for r in (got, self.s3.head_object(Bucket=self.bucket, Key="dir/obj")):
            self.assertEqual(r["ContentLength"], len(data))
            self.assertEqual(r["ETag"], f'"{md5_hex(data)}"')
            self.assertEqual(r["ContentType"], "text/plain")
            self.assertEqual(r["Metadata"], {"color": "blue"})
            self.assertEqual(r["ContentDisposition"], "attachment")
            self.assertEqual(r["CacheControl"], "no-cache")
            age = datetime.datetime.now(datetime.timezone.utc) - r["LastModified"]
            self.assertLess(abs(age.total_seconds()), 120)
        self.assertEqual(len(files_of(f"/{self.bucket}/dir/obj")), 3, "three replicas")
        got = self.s3.get_object(Bucket=self.bucket, Key="dir/obj", ResponseContentType="x/y")
        self.assertEqual(got["ContentType"], "x/y")

    def test_overwrite_and_empty_values(self):
        self.s3.put_object(Bucket=self.bucket, Key="over", Body=b"first")
        self.s3.put_object(Bucket=self.bucket, Key="over", Body=b"second value")
        got = self.s3.get_object(Bucket=self.bucket, Key="over")
        self.assertEqual(got["Body"].read(), b"second value")
        self.assertEqual(got["ETag"], f'"{md5_hex(b"second value")}"')
        self.assertEqual(staging_files(), [], "no staged copy left")
        self.s3.put_object(Bucket=self.bucket, Key="empty", Body=b"")
        got = self.s3.get_object(Bucket=self.bucket, Key="empty")
        self.assertEqual((got["ContentLength"], got["Body"].read()), (0, b""))
        self.assertEqual(got["ETag"], f'"{md5_hex(b"")}"')

    def test_ranges_and_conditions(self):
        data = body(1000, 2)
        etag = self.s3.put_object(Bucket=self.bucket, Key="r", Body=data)["ETag"]
        got = self.s3.get_object(Bucket=self.bucket, Key="r", Range="bytes=10-19")
        self.assertEqual(got["Body"].read(), data[10:20])
        self.assertEqual(got["ContentRange"], "bytes 10-19/1000")
        self.assertEqual(got["ResponseMetadata"]["HTTPStatusCode"], 206)
        tail = self.s3.get_object(Bucket=self.bucket, Key="r", Range="bytes=-5")["Body"].read()
        self.assertEqual(tail, data[-5:])
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="r", Range="bytes=2000-")
        self.assertEqual(code(e), "InvalidRange")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="r", IfMatch=etag)["Body"].read(), data)
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="r", IfMatch='"nope"')
        self.assertEqual(code(e), "PreconditionFailed")
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="r", IfNoneMatch=etag)
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 304)
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="r", IfModifiedSince=future)
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 304)
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="r", IfUnmodifiedSince=past)
        self.assertEqual(code(e), "PreconditionFailed")
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="r", IfModifiedSince=past)["Body"].read(), data)

    def test_missing_keys_and_buckets(self):
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=self.bucket, Key="nope")
        self.assertEqual(code(e), "NoSuchKey")
        self.assertTrue(e.exception.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"])
        with self.assertRaises(ClientError) as e:
            self.s3.get_object(Bucket=fresh("nob"), Key="nope")
        self.assertEqual(code(e), "NoSuchBucket")
        with self.assertRaises(ClientError) as e:
            self.s3.head_object(Bucket=self.bucket, Key="nope")
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        # Deleting what is not there is fine.
        r = self.s3.delete_object(Bucket=self.bucket, Key="nope")
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)

    def test_delete_and_delete_objects(self):
        for k in ("d1", "d2", "d3"):
            self.s3.put_object(Bucket=self.bucket, Key=k, Body=k.encode())
        self.s3.delete_object(Bucket=self.bucket, Key="d1")
        self.assertEqual(files_of(f"/{self.bucket}/d1"), [])
        r = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": "d2"}, {"Key": "none"}]})
        self.assertEqual(sorted(d["Key"] for d in r["Deleted"]), ["d2", "none"])
        r = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": "d3"}], "Quiet": True})
        self.assertNotIn("Deleted", r)
        for k in ("d2", "d3"):
            with self.assertRaises(ClientError):
                self.s3.head_object(Bucket=self.bucket, Key=k)
            self.assertEqual(files_of(f"/{self.bucket}/{k}"), [])

    def test_delete_objects_keeps_keys_exactly(self):
        # White space is part of a key: the usual list-and-delete loop
        # empties a bucket holding such keys.
        bucket = "white-space-keys"
        self.s3.create_bucket(Bucket=bucket)
        keys = [" ", "_ ", "\n", " lead", "trail ", "a  b"]
        for k in keys:
            self.s3.put_object(Bucket=bucket, Key=k, Body=b"v")
        listed = self.s3.list_objects_v2(Bucket=bucket)
        self.assertEqual(sorted(o["Key"] for o in listed["Contents"]), sorted(keys))
        r = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        self.assertNotIn("Errors", r)
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket=bucket))
        for k in keys:
            self.assertEqual(files_of(f"/{bucket}/{k}"), [], repr(k))
        self.s3.delete_bucket(Bucket=bucket)

    def test_server_side_copy(self):
        data = body(300_000, 3)
        self.s3.put_object(Bucket=self.bucket, Key="src", Body=data, ContentType="a/b", Metadata={"m": "1"})
        r = self.s3.copy_object(Bucket=self.bucket, Key="dst", CopySource={"Bucket": self.bucket, "Key": "src"})
        self.assertEqual(r["CopyObjectResult"]["ETag"], f'"{md5_hex(data)}"')
        got = self.s3.get_object(Bucket=self.bucket, Key="dst")
        self.assertEqual((got["Body"].read(), got["ContentType"], got["Metadata"]), (data, "a/b", {"m": "1"}))
        # Metadata replaced in place: no bytes move.
        self.s3.copy_object(Bucket=self.bucket, Key="src", CopySource={"Bucket": self.bucket, "Key": "src"},
                            MetadataDirective="REPLACE", ContentType="c/d", Metadata={"m": "2"})
        head = self.s3.head_object(Bucket=self.bucket, Key="src")
        self.assertEqual((head["ContentType"], head["Metadata"], head["ContentLength"]), ("c/d", {"m": "2"}, len(data)))
        with self.assertRaises(ClientError) as e:
            self.s3.copy_object(Bucket=self.bucket, Key="src", CopySource={"Bucket": self.bucket, "Key": "src"})
        self.assertEqual(code(e), "InvalidRequest")
        with self.assertRaises(ClientError) as e:
            self.s3.copy_object(Bucket=self.bucket, Key="x", CopySource={"Bucket": self.bucket, "Key": "none"})
        self.assertEqual(code(e), "NoSuchKey")

    def test_presigned_urls(self):
        data = b"presigned value"
        self.s3.put_object(Bucket=self.bucket, Key="pre", Body=data)
        for s3 in (self.s3, client(signature_version="s3v4")):
            url = s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "pre"})
            self.assertEqual(urllib.request.urlopen(url).read(), data)
            url = s3.generate_presigned_url("put_object", Params={"Bucket": self.bucket, "Key": "pre-put"})
            req = urllib.request.Request(url, data=b"put through a URL", method="PUT")
            self.assertEqual(urllib.request.urlopen(req).status, 200)
            self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="pre-put")["Body"].read(),
                             b"put through a URL")
            self.s3.delete_object(Bucket=self.bucket, Key="pre-put")


class Checksums(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("c")

    def test_header_checksums_verified(self):
        data = body(50_000, 4)
        for algorithm in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
            r = self.s3.put_object(Bucket=self.bucket, Key=f"ok-{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
            self.assertIn(f"Checksum{algorithm}", r)
        self.s3.put_object(Bucket=self.bucket, Key="md5", Body=data,
                           ContentMD5=__import__("base64").b64encode(hashlib.md5(data).digest()).decode())
        bad_md5 = __import__("base64").b64encode(hashlib.md5(b"other").digest()).decode()
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=self.bucket, Key="bad-md5", Body=data, ContentMD5=bad_md5)
        self.assertEqual(code(e), "BadDigest")
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=self.bucket, Key="bad-crc", Body=data, ChecksumCRC32="AAAAAA==")
        self.assertEqual(code(e), "BadDigest")
        for key in ("bad-md5", "bad-crc"):
            self.assertEqual(files_of(f"/{self.bucket}/{key}"), [], f"{key}: nothing stored")
            with self.assertRaises(ClientError):
                self.s3.head_object(Bucket=self.bucket, Key=key)

    def test_trailer_checksums_verified(self):
        data = body(200_000, 5)
        for algorithm in ("CRC32", "CRC64NVME", "SHA256"):
            s3 = trailer_checksums(client(), algorithm)
            s3.put_object(Bucket=self.bucket, Key=f"tr-{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
            self.assertEqual(s3.get_object(Bucket=self.bucket, Key=f"tr-{algorithm}")["Body"].read(), data)
        # Sent by hand: a trailer that does not match the bytes.
        headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                   "Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
                   "x-amz-decoded-content-length": str(len(data))}
        good = aws_chunked(data, [("x-amz-checksum-crc32", crc32_b64(data))])
        status, _, _ = raw("PUT", f"/{self.bucket}/tr-raw", headers, good)
        self.assertEqual(status, 200)
        bad = aws_chunked(data, [("x-amz-checksum-crc32", crc32_b64(b"other"))])
        status, _, answer = raw("PUT", f"/{self.bucket}/tr-bad", headers, bad)
        self.assertEqual((status, b"<Code>BadDigest</Code>" in answer), (400, True), answer)
        self.assertEqual(files_of(f"/{self.bucket}/tr-bad"), [])
        short = dict(headers, **{"x-amz-decoded-content-length": str(len(data) + 1)})
        status, _, answer = raw("PUT", f"/{self.bucket}/tr-short", short, good)
        self.assertEqual((status, b"<Code>IncompleteBody</Code>" in answer), (400, True), answer)
        self.assertEqual(files_of(f"/{self.bucket}/tr-short"), [])


class Listings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("l")
        cls.keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d e+f", "z/€"]
        for k in cls.keys:
            cls.s3.put_object(Bucket=cls.bucket, Key=k, Body=k.encode())

    def test_v2_prefix_delimiter_and_pages(self):
        r = self.s3.list_objects_v2(Bucket=self.bucket)
        self.assertEqual([o["Key"] for o in r["Contents"]], self.keys)
        self.assertEqual([o["Size"] for o in r["Contents"]], [len(k.encode()) for k in self.keys])
        self.assertEqual(r["Contents"][0]["ETag"], f'"{md5_hex(b"a/1")}"')
        self.assertEqual((r["KeyCount"], r["IsTruncated"]), (7, False))
        r = self.s3.list_objects_v2(Bucket=self.bucket, Delimiter="/")
        self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["a/", "b/", "z/"])
        self.assertEqual([o["Key"] for o in r["Contents"]], ["c", "d e+f"])
        r = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="a/", Delimiter="/")
        self.assertEqual(([o["Key"] for o in r["Contents"]], [p["Prefix"] for p in r["CommonPrefixes"]]),
                         (["a/1", "a/2"], ["a/b/"]))
        seen, token = [], None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            r = self.s3.list_objects_v2(Bucket=self.bucket, MaxKeys=2, **kw)
            seen += [o["Key"] for o in r.get("Contents", [])]
            if not r["IsTruncated"]:
                break
            token = r["NextContinuationToken"]
        self.assertEqual(seen, self.keys)
        r = self.s3.list_objects_v2(Bucket=self.bucket, StartAfter="b/4")
        self.assertEqual([o["Key"] for o in r["Contents"]], self.keys[4:])
        r = self.s3.list_objects_v2(Bucket=self.bucket, EncodingType="url", Prefix="d")
        self.assertEqual([o["Key"] for o in r["Contents"]], ["d%20e%2Bf"], "as sent: asked for by the caller")

    def test_special_characters_without_url_encoding(self):
        """Without encoding-type=url (boto3 always asks for it), keys,
        prefixes, delimiters and markers come back escaped once."""
        bucket = fresh("x")
        self.s3.create_bucket(Bucket=bucket)
        keys = ["q&a/'2'\"", "q&a/<1>", "q&b"]
        for k in keys:
            self.s3.put_object(Bucket=bucket, Key=k, Body=b"x")

        def listing(query):
            q = "&".join(f"{n}={urllib.parse.quote(v, safe='')}" for n, v in query)
            status, _, answer = raw("GET", f"/{bucket}?{q}", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
            self.assertEqual(status, 200, answer)
            root = ET.fromstring(answer)
            ns = {"s": root.tag.split("}")[0][1:]}
            return lambda path: [e.text for e in root.findall(path, ns)]

        t = listing([("list-type", "2"), ("prefix", "q&a/")])
        self.assertEqual((t("s:Prefix"), t("s:Contents/s:Key")), (["q&a/"], keys[:2]))
        t = listing([("list-type", "2"), ("delimiter", "&"), ("start-after", keys[0])])
        self.assertEqual((t("s:Delimiter"), t("s:StartAfter"), t("s:CommonPrefixes/s:Prefix")),
                         (["&"], [keys[0]], ["q&"]))
        t = listing([("marker", keys[0])])
        self.assertEqual((t("s:Marker"), t("s:Contents/s:Key")), ([keys[0]], keys[1:]))

    def test_v1_and_versions(self):
        r = self.s3.list_objects(Bucket=self.bucket, MaxKeys=3)
        self.assertTrue(r["IsTruncated"])
        r2 = self.s3.list_objects(Bucket=self.bucket, Marker=r["Contents"][-1]["Key"])
        self.assertEqual([o["Key"] for o in r["Contents"] + r2["Contents"]], self.keys)
        r = self.s3.list_objects(Bucket=self.bucket, Delimiter="/", MaxKeys=2)
        self.assertEqual(r["NextMarker"], "b/")
        r = self.s3.list_object_versions(Bucket=self.bucket)
        self.assertEqual([(v["Key"], v["VersionId"], v["IsLatest"]) for v in r["Versions"]],
                         [(k, "null", True) for k in self.keys])


class Multipart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = fresh("m")
        cls.s3.create_bucket(Bucket=cls.bucket)

    def upload(self, key, sizes, order=None):
        up = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType="x/parts")["UploadId"]
        parts = {}
        for n in order or range(1, len(sizes) + 1):
            data = body(sizes[n - 1], n)
            etag = self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=up, PartNumber=n, Body=data)["ETag"]
            self.assertEqual(etag, f'"{md5_hex(data)}"')
            parts[n] = (etag, data)
        return up, parts

    def test_parts_out_of_order(self):
        sizes = [5 << 20, 5 << 20, 1234]
        up, parts = self.upload("mp", sizes, order=[3, 1, 2])
        listed = self.s3.list_parts(Bucket=self.bucket, Key="mp", UploadId=up)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in listed], [(1, sizes[0]), (2, sizes[1]), (3, 1234)])
        uploads = self.s3.list_multipart_uploads(Bucket=self.bucket)["Uploads"]
        self.assertIn(("mp", up), [(u["Key"], u["UploadId"]) for u in uploads])
        r = self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key="mp", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n][0]} for n in (1, 2, 3)]})
        whole = b"".join(parts[n][1] for n in (1, 2, 3))
        md5s = b"".join(hashlib.md5(parts[n][1]).digest() for n in (1, 2, 3))
        self.assertEqual(r["ETag"], f'"{hashlib.md5(md5s).hexdigest()}-3"')
        got = self.s3.get_object(Bucket=self.bucket, Key="mp")
        self.assertEqual((got["Body"].read() == whole, got["ContentType"]), (True, "x/parts"))
        self.assertEqual(len(files_of(f"/{self.bucket}/mp")), 3)
        self.assertEqual(staging_files(), [], "no part left behind")
        with self.assertRaises(ClientError) as e:
            self.s3.list_parts(Bucket=self.bucket, Key="mp", UploadId=up)
        self.assertEqual(code(e), "NoSuchUpload")

    def test_a_part_uploaded_again_and_a_completion_over_a_value(self):
        self.s3.put_object(Bucket=self.bucket, Key="again", Body=b"old value")
        up, parts = self.upload("again", [5 << 20, 10])
        data = body(5 << 20, 99)
        etag = self.s3.upload_part(Bucket=self.bucket, Key="again", UploadId=up, PartNumber=1, Body=data)["ETag"]
        self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key="again", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}, {"PartNumber": 2, "ETag": parts[2][0]}]})
        got = self.s3.get_object(Bucket=self.bucket, Key="again")["Body"].read()
        self.assertEqual(got, data + parts[2][1])
        self.assertEqual(staging_files(), [])

    def test_errors_store_nothing(self):
        up, parts = self.upload("bad", [100, 100])
        ok = [{"PartNumber": 1, "ETag": parts[1][0]}, {"PartNumber": 2, "ETag": parts[2][0]}]
        cases = [
            ([{"PartNumber": 1, "ETag": parts[1][0]}, {"PartNumber": 2, "ETag": parts[2][0]}], "EntityTooSmall"),
            ([ok[1], ok[0]], "InvalidPartOrder"),
            ([ok[0], {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'}], "InvalidPart"),
            ([ok[0], {"PartNumber": 7, "ETag": parts[2][0]}], "InvalidPart"),
        ]
        for listed, want in cases:
            with self.assertRaises(ClientError) as e:
                self.s3.complete_multipart_upload(Bucket=self.bucket, Key="bad", UploadId=up,
                                                  MultipartUpload={"Parts": listed})
            self.assertEqual(code(e), want)
        self.assertEqual(files_of(f"/{self.bucket}/bad"), [])
        for call in (lambda: self.s3.upload_part(Bucket=self.bucket, Key="bad", UploadId="nope", PartNumber=1, Body=b"x"),
                     lambda: self.s3.list_parts(Bucket=self.bucket, Key="bad", UploadId="nope"),
                     lambda: self.s3.abort_multipart_upload(Bucket=self.bucket, Key="bad", UploadId="nope")):
            with self.assertRaises(ClientError) as e:
                call()
            self.assertEqual(code(e), "NoSuchUpload")
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key="bad", UploadId=up)
        self.assertEqual(staging_files(), [], "an aborted upload leaves no part")
        with self.assertRaises(ClientError) as e:
            self.s3.head_object(Bucket=self.bucket, Key="bad")


if __name__ == "__main__":
    unittest.main()
