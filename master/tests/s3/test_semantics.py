"""S3 behaviours clients rely on, through boto3: overlapping writers of a
key (each succeeds, the last to commit is what readers see), conditional
writes (If-None-Match: * and If-Match on PutObject and
CompleteMultipartUpload, with racing writers), a retried
CompleteMultipartUpload, and ACLs as a store with one owner answers them."""

import threading
import unittest

from botocore.exceptions import ClientError

from helpers import body, client, files_of, fresh, raw, staging_files


def code(err):
    return err.exception.response["Error"]["Code"]


def status(err):
    return err.exception.response["ResponseMetadata"]["HTTPStatusCode"]


PART = 5 << 20


def multipart(s3, bucket, key, parts=2, seed=0):
    """An upload of `parts` parts, not completed: (id, part list, data)."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed, data = [], b""
    for n in range(1, parts + 1):
        piece = body(PART if n < parts else 1000, seed + n)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=piece)["ETag"]
        listed.append({"PartNumber": n, "ETag": etag})
        data += piece
    return up, listed, data


class ConditionalWrites(unittest.TestCase):
    def setUp(self):
        self.s3 = client()
        self.bucket = fresh("cw")
        self.s3.create_bucket(Bucket=self.bucket)

    def test_if_none_match_creates_once(self):
        b = self.bucket
        r = self.s3.put_object(Bucket=b, Key="k", Body=b"first", IfNoneMatch="*")
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=b, Key="k", Body=b"second", IfNoneMatch="*")
        self.assertEqual((status(e), code(e)), (412, "PreconditionFailed"))
        got = self.s3.get_object(Bucket=b, Key="k")
        self.assertEqual((got["Body"].read(), got["ETag"]), (b"first", r["ETag"]))
        # A deleted key can be created again.
        self.s3.delete_object(Bucket=b, Key="k")
        self.s3.put_object(Bucket=b, Key="k", Body=b"again", IfNoneMatch="*")
        self.assertEqual(self.s3.get_object(Bucket=b, Key="k")["Body"].read(), b"again")

    def test_if_match_replaces_only_the_named_object(self):
        b = self.bucket
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=b, Key="absent", Body=b"x", IfMatch='"abc"')
        self.assertEqual((status(e), code(e)), (404, "NoSuchKey"))
        first = self.s3.put_object(Bucket=b, Key="k", Body=b"one")["ETag"]
        second = self.s3.put_object(Bucket=b, Key="k", Body=b"two", IfMatch=first)["ETag"]
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=b, Key="k", Body=b"three", IfMatch=first)
        self.assertEqual((status(e), code(e)), (412, "PreconditionFailed"))
        got = self.s3.get_object(Bucket=b, Key="k")
        self.assertEqual((got["Body"].read(), got["ETag"]), (b"two", second))

    def test_if_none_match_with_a_tag_is_not_implemented(self):
        with self.assertRaises(ClientError) as e:
            self.s3.put_object(Bucket=self.bucket, Key="k", Body=b"x", IfNoneMatch='"abc"')
        self.assertEqual((status(e), code(e)), (501, "NotImplemented"))

    def test_sixteen_racing_creators_one_wins(self):
        b, key = self.bucket, "raced"
        results = [None] * 16
        start = threading.Barrier(16)

        def create(i):
            s3 = client()
            data = body(1 << 20, 100 + i)
            start.wait()
            try:
                s3.put_object(Bucket=b, Key=key, Body=data, IfNoneMatch="*")
                results[i] = (200, data)
            except ClientError as err:
                results[i] = (err.response["ResponseMetadata"]["HTTPStatusCode"],
                              err.response["Error"]["Code"])

        threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [r for r in results if r[0] == 200]
        self.assertEqual(len(won), 1, results)
        # The others waited for the winner's write, then found the key.
        self.assertEqual(sorted(r for r in results if r[0] != 200), [(412, "PreconditionFailed")] * 15)
        self.assertEqual(self.s3.get_object(Bucket=b, Key=key)["Body"].read(), won[0][1])

    def test_complete_with_conditions(self):
        b = self.bucket
        self.s3.put_object(Bucket=b, Key="k", Body=b"there")
        up, parts, _ = multipart(self.s3, b, "k")
        with self.assertRaises(ClientError) as e:
            self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up, IfNoneMatch="*",
                                              MultipartUpload={"Parts": parts})
        self.assertEqual((status(e), code(e)), (412, "PreconditionFailed"))
        self.assertEqual(self.s3.get_object(Bucket=b, Key="k")["Body"].read(), b"there")
        # The upload is still there: completed under a condition that holds.
        etag = self.s3.head_object(Bucket=b, Key="k")["ETag"]
        done = self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up, IfMatch=etag,
                                                 MultipartUpload={"Parts": parts})
        self.assertEqual(self.s3.head_object(Bucket=b, Key="k")["ETag"], done["ETag"])
        up2, parts2, data2 = multipart(self.s3, b, "new")
        self.s3.complete_multipart_upload(Bucket=b, Key="new", UploadId=up2, IfNoneMatch="*",
                                          MultipartUpload={"Parts": parts2})
        self.assertEqual(self.s3.get_object(Bucket=b, Key="new")["Body"].read(), data2)


def threads(n, work):
    """Runs work(i) on n threads started together; their results."""
    results = [None] * n
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        try:
            results[i] = work(i)
        except ClientError as err:
            results[i] = err.response["Error"]["Code"]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


class OverlappingWriters(unittest.TestCase):
    """What S3 does: writers of one key may overlap; each that sends its
    whole body succeeds, readers see one value whole, the last committed."""

    def setUp(self):
        self.s3 = client()
        self.bucket = fresh("ow")
        self.s3.create_bucket(Bucket=self.bucket)

    def assert_one_copy_per_replica(self, key, value):
        files = files_of(f"/{self.bucket}/{key}")
        self.assertEqual(len(files), 3, files)
        for f in files:
            with open(f, "rb") as fh:
                self.assertEqual(fh.read(), value, f)
        self.assertEqual(staging_files(), [])

    def test_put_objects_of_one_key_at_once(self):
        key = "same"
        values = [body(8 << 20, 200 + i) for i in range(4)]

        def put(i):
            return client().put_object(Bucket=self.bucket, Key=key, Body=values[i])["ETag"]

        for _ in range(2):  # onto a new key, then over the value one of them left
            etags = threads(4, put)
            self.assertTrue(all(e and e.startswith('"') for e in etags), etags)
            got = self.s3.get_object(Bucket=self.bucket, Key=key)
            data = got["Body"].read()
            self.assertIn(data, values)
            self.assertEqual(got["ETag"], etags[values.index(data)])
            self.assert_one_copy_per_replica(key, data)

    def test_put_copy_complete_and_delete_overlap(self):
        b, key = self.bucket, "mixed"
        self.s3.put_object(Bucket=b, Key="source", Body=body(8 << 20, 300))
        up, parts, completed = multipart(self.s3, b, key, parts=2, seed=310)
        values = {"put": body(8 << 20, 320), "copy": self.s3.get_object(Bucket=b, Key="source")["Body"].read(),
                  "complete": completed}

        def write(i):
            s3 = client()
            if i == 0:
                return s3.put_object(Bucket=b, Key=key, Body=values["put"])["ETag"]
            if i == 1:
                return s3.copy_object(Bucket=b, Key=key, CopySource={"Bucket": b, "Key": "source"})[
                    "CopyObjectResult"]["ETag"]
            return s3.complete_multipart_upload(Bucket=b, Key=key, UploadId=up,
                                                MultipartUpload={"Parts": parts})["ETag"]

        etags = threads(3, write)
        self.assertTrue(all(e and e.startswith('"') for e in etags), etags)
        data = self.s3.get_object(Bucket=b, Key=key)["Body"].read()
        self.assertIn(data, list(values.values()))
        self.assert_one_copy_per_replica(key, data)
        results = threads(2, lambda i: client().delete_object(Bucket=b, Key=key)["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(results, [204, 204])
        self.assertEqual(files_of(f"/{b}/{key}"), [])


class RetriedComplete(unittest.TestCase):
    def setUp(self):
        self.s3 = client()
        self.bucket = fresh("rc")
        self.s3.create_bucket(Bucket=self.bucket)

    def test_a_retried_complete_gets_the_first_answer(self):
        b = self.bucket
        up, parts, data = multipart(self.s3, b, "k")
        first = self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up,
                                                  MultipartUpload={"Parts": parts})
        again = self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up,
                                                  MultipartUpload={"Parts": parts})
        self.assertEqual(again["ETag"], first["ETag"])
        self.assertEqual((again["Bucket"], again["Key"]), (b, "k"))
        self.assertEqual(self.s3.get_object(Bucket=b, Key="k")["Body"].read(), data)
        # Another list of parts: the upload is gone.
        with self.assertRaises(ClientError) as e:
            self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up,
                                              MultipartUpload={"Parts": parts[:1]})
        self.assertEqual(code(e), "NoSuchUpload")
        # Once the object is another, the retry no longer matches.
        self.s3.put_object(Bucket=b, Key="k", Body=b"other")
        with self.assertRaises(ClientError) as e:
            self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up,
                                              MultipartUpload={"Parts": parts})
        self.assertEqual(code(e), "NoSuchUpload")

    def test_a_copy_of_a_completed_object_is_not_it(self):
        b = self.bucket
        up, parts, _ = multipart(self.s3, b, "k")
        self.s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up,
                                          MultipartUpload={"Parts": parts})
        self.s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k"})
        with self.assertRaises(ClientError) as e:
            self.s3.complete_multipart_upload(Bucket=b, Key="copy", UploadId=up,
                                              MultipartUpload={"Parts": parts})
        self.assertEqual(code(e), "NoSuchUpload")


class Acls(unittest.TestCase):
    def setUp(self):
        self.s3 = client()
        self.bucket = fresh("acl")
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_object(Bucket=self.bucket, Key="k", Body=b"v")

    def assert_owner_only(self, acl):
        self.assertEqual(acl["Owner"]["ID"], "mkv")
        self.assertEqual(len(acl["Grants"]), 1)
        grant = acl["Grants"][0]
        self.assertEqual((grant["Grantee"]["Type"], grant["Grantee"]["ID"], grant["Permission"]),
                         ("CanonicalUser", "mkv", "FULL_CONTROL"))

    def test_get_acls(self):
        self.assert_owner_only(self.s3.get_bucket_acl(Bucket=self.bucket))
        self.assert_owner_only(self.s3.get_object_acl(Bucket=self.bucket, Key="k"))
        with self.assertRaises(ClientError) as e:
            self.s3.get_object_acl(Bucket=self.bucket, Key="absent")
        self.assertEqual(code(e), "NoSuchKey")
        with self.assertRaises(ClientError) as e:
            self.s3.get_bucket_acl(Bucket=fresh("none"))
        self.assertEqual(code(e), "NoSuchBucket")

    def test_private_is_taken_the_rest_refused(self):
        b = self.bucket
        self.s3.put_bucket_acl(Bucket=b, ACL="private")
        self.s3.put_object_acl(Bucket=b, Key="k", ACL="private")
        policy = self.s3.get_object_acl(Bucket=b, Key="k")
        del policy["ResponseMetadata"]
        self.s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy=policy)
        self.s3.put_object(Bucket=b, Key="p", Body=b"v", ACL="private")
        self.s3.put_object(Bucket=b, Key="o", Body=b"v", ACL="bucket-owner-full-control")
        refused = [
            lambda: self.s3.put_bucket_acl(Bucket=b, ACL="public-read"),
            lambda: self.s3.put_object_acl(Bucket=b, Key="k", ACL="public-read-write"),
            lambda: self.s3.put_object(Bucket=b, Key="x", Body=b"v", ACL="public-read"),
            lambda: self.s3.put_object(Bucket=b, Key="x", Body=b"v", GrantRead="id=someone"),
            lambda: self.s3.copy_object(Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "k"},
                                        ACL="authenticated-read"),
            lambda: self.s3.create_multipart_upload(Bucket=b, Key="x", ACL="public-read"),
            lambda: self.s3.create_bucket(Bucket=fresh("pub"), ACL="public-read"),
        ]
        for call in refused:
            with self.assertRaises(ClientError) as e:
                call()
            self.assertEqual((status(e), code(e)), (501, "NotImplemented"))
        grant = {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                 "Permission": "READ"}
        policy["Grants"].append(grant)
        with self.assertRaises(ClientError) as e:
            self.s3.put_object_acl(Bucket=b, Key="k", AccessControlPolicy=policy)
        self.assertEqual(code(e), "NotImplemented")
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=b, Key="x")
        self.assert_owner_only(self.s3.get_object_acl(Bucket=b, Key="k"))

    def test_put_acl_needs_a_header_or_a_policy(self):
        status_, _, text = raw("PUT", f"/{self.bucket}/k?acl", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        self.assertEqual(status_, 400, text)
        self.assertIn(b"MissingSecurityHeader", text)


if __name__ == "__main__":
    unittest.main()
