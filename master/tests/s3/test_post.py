"""POST Object, as browsers send it: forms made by boto3's
generate_presigned_post, posted with requests; the policy's conditions
kept to, the answers success_action_status and success_action_redirect ask
for, and a file that breaks the policy stores nothing."""

import unittest
import xml.etree.ElementTree as ET

import requests
from botocore.exceptions import ClientError

from helpers import ENDPOINT, body, client, files_of, fresh, staging_files

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def error_code(r):
    return r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else r.text


class PostObject(unittest.TestCase):
    def setUp(self):
        self.s3 = client()
        self.bucket = fresh("post")
        self.s3.create_bucket(Bucket=self.bucket)

    def form(self, key="up/${filename}", fields=None, conditions=None, expires=600):
        return self.s3.generate_presigned_post(self.bucket, key, Fields=fields, Conditions=conditions,
                                               ExpiresIn=expires)

    def post(self, form, data, name="a.txt", extra=None, redirects=False):
        fields = dict(form["fields"], **(extra or {}))
        return requests.post(form["url"], data=fields, files={"file": (name, data)},
                             allow_redirects=redirects, timeout=60)

    def assert_absent(self, key):
        with self.assertRaises(ClientError):
            self.s3.head_object(Bucket=self.bucket, Key=key)
        self.assertEqual(files_of(f"/{self.bucket}/{key}"), [])
        self.assertEqual(staging_files(), [])

    def test_a_form_upload_stores_the_file(self):
        fields = {"Content-Type": "text/plain", "success_action_status": "201", "x-amz-meta-color": "blue"}
        conditions = [{"Content-Type": "text/plain"}, {"success_action_status": "201"},
                      ["starts-with", "$key", "up/"], ["content-length-range", 1, 16 << 20],
                      {"x-amz-meta-color": "blue"}]
        data = body(8 << 20, 7)
        r = self.post(self.form(fields=fields, conditions=conditions), data, name="notes.txt")
        self.assertEqual(r.status_code, 201, r.text)
        doc = ET.fromstring(r.content)
        self.assertEqual(doc.find(f"{NS}Key").text, "up/notes.txt")
        self.assertEqual(doc.find(f"{NS}Bucket").text, self.bucket)
        got = self.s3.get_object(Bucket=self.bucket, Key="up/notes.txt")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ContentType"], "text/plain")
        self.assertEqual(got["Metadata"], {"color": "blue"})
        self.assertEqual(got["ETag"], r.headers["ETag"])
        self.assertEqual(doc.find(f"{NS}ETag").text, got["ETag"])

    def test_default_answer_overwrite_and_redirect(self):
        r = self.post(self.form(key="k"), b"first")
        self.assertEqual(r.status_code, 204, r.text)
        r = self.post(self.form(key="k"), b"second", extra={})
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="k")["Body"].read(), b"second")
        back = "http://127.0.0.1:9/done?x=1"
        form = self.form(key="k", fields={"success_action_redirect": back},
                         conditions=[{"success_action_redirect": back}])
        r = self.post(form, b"third")
        self.assertEqual(r.status_code, 303, r.text)
        self.assertTrue(r.headers["Location"].startswith(back + f"&bucket={self.bucket}&key=k&etag="),
                        r.headers["Location"])
        form = self.form(key="k", fields={"success_action_status": "200"},
                         conditions=[{"success_action_status": "200"}])
        self.assertEqual(self.post(form, b"fourth").status_code, 200)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="k")["Body"].read(), b"fourth")

    def test_sizes_outside_the_range_store_nothing(self):
        form = self.form(key="sized", conditions=[["content-length-range", 10, 1 << 20]])
        r = self.post(form, body(2 << 20, 1))
        self.assertEqual((r.status_code, error_code(r)), (400, "EntityTooLarge"), r.text)
        self.assert_absent("sized")
        r = self.post(form, b"short")
        self.assertEqual((r.status_code, error_code(r)), (400, "EntityTooSmall"), r.text)
        self.assert_absent("sized")
        self.assertEqual(self.post(form, b"just right").status_code, 204)

    def test_conditions_and_expiry(self):
        form = self.form(key="up/x", conditions=[["starts-with", "$key", "up/"]])
        r = self.post(dict(form, fields=dict(form["fields"], key="down/x")), b"v")
        self.assertEqual((r.status_code, error_code(r)), (403, "AccessDenied"), r.text)
        r = self.post(form, b"v", extra={"x-amz-meta-extra": "not in the policy"})
        self.assertEqual((r.status_code, error_code(r)), (403, "AccessDenied"), r.text)
        self.assertIn("Extra input fields", r.text)
        self.assertEqual(self.post(form, b"v", extra={"x-ignore-note": "free"}).status_code, 204)
        r = self.post(self.form(key="late", expires=-60), b"v")
        self.assertEqual((r.status_code, error_code(r)), (403, "AccessDenied"), r.text)
        self.assertIn("expired", r.text)
        self.assert_absent("late")
        form = self.form(key="acl", fields={"acl": "public-read"}, conditions=[{"acl": "public-read"}])
        r = self.post(form, b"v")
        self.assertEqual((r.status_code, error_code(r)), (501, "NotImplemented"), r.text)
        self.assert_absent("acl")

    def test_malformed_forms(self):
        url = f"{ENDPOINT}/{self.bucket}"
        r = requests.post(url, data={"key": "k"}, files={"other": ("x", b"v")}, timeout=60)
        self.assertEqual((r.status_code, error_code(r)), (400, "MalformedPOSTRequest"), r.text)
        r = requests.post(url, data={"acl": "private"}, files={"file": ("x", b"v")}, timeout=60)
        self.assertEqual((r.status_code, error_code(r)), (400, "InvalidArgument"), r.text)
        r = requests.post(f"{ENDPOINT}/{fresh('none')}", data={"key": "k"}, files={"file": ("x", b"v")},
                          timeout=60)
        self.assertEqual((r.status_code, error_code(r)), (404, "NoSuchBucket"), r.text)
        cut = requests.post(url, data=b"--xx\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n"
                            b"--xx\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end",
                            headers={"Content-Type": "multipart/form-data; boundary=xx"}, timeout=60)
        self.assertEqual((cut.status_code, error_code(cut)), (400, "MalformedPOSTRequest"), cut.text)
        self.assert_absent("k")


if __name__ == "__main__":
    unittest.main()
