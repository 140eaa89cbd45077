"""The other S3 clients, as their users run them: the aws CLI (`s3 cp`
across its multipart threshold, `ls`, `sync`, `rm --recursive`, `s3api`
multipart with parts out of order), pyarrow's S3FileSystem (parquet
written and read, sizes, listings), s3fs, and rclone (`copy`, `ls`,
`check`, `delete`)."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import pyarrow as pa
import pyarrow.parquet as pq
import s3fs
from pyarrow import fs

from helpers import ACCESS, ENDPOINT, SECRET, body, client, fresh, staging_files

# Clients that read AWS_CA_BUNDLE choke on it over plain http (rclone).
ENV = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
ENV.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")


def run(*cmd):
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def aws(*args):
    cli = os.environ.get("MKV_AWS", shutil.which("aws") or "aws")
    return run(cli, "--endpoint-url", ENDPOINT, *args)


class AwsCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.bucket = fresh("cli")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, name, size, seed):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(body(size, seed))
        return path

    def test_cp_ls_sync_rm(self):
        aws("s3", "mb", f"s3://{self.bucket}")
        sizes = {"small": 2_000, "ten": 10 << 20, "hundred": 100 << 20}
        for seed, (name, size) in enumerate(sizes.items()):
            aws("s3", "cp", "--only-show-errors", self.write(name, size, seed), f"s3://{self.bucket}/{name}")
        listed = aws("s3", "ls", f"s3://{self.bucket}/")
        for name, size in sizes.items():
            self.assertRegex(listed, rf"\s{size} {name}\n")
        for name in sizes:
            back = os.path.join(self.dir, name + ".back")
            aws("s3", "cp", "--only-show-errors", f"s3://{self.bucket}/{name}", back)
            with open(back, "rb") as a, open(os.path.join(self.dir, name), "rb") as b:
                self.assertTrue(a.read() == b.read(), name)
        tree = os.path.join(self.dir, "tree")
        for i, rel in enumerate(["a", "sub/b", "sub/deeper/c"]):
            self.write(os.path.join("tree", rel), 1000 + i, 10 + i)
        aws("s3", "sync", "--only-show-errors", tree, f"s3://{self.bucket}/tree")
        self.assertEqual(aws("s3", "sync", "--dryrun", tree, f"s3://{self.bucket}/tree"), "", "in sync")
        listed = aws("s3", "ls", "--recursive", f"s3://{self.bucket}/tree/")
        self.assertEqual(len(listed.splitlines()), 3, listed)
        aws("s3", "rm", "--recursive", "--only-show-errors", f"s3://{self.bucket}/")
        self.assertEqual(aws("s3", "ls", "--recursive", f"s3://{self.bucket}/"), "")

    def test_s3api_multipart_parts_out_of_order(self):
        key = "assembled"
        up = json.loads(aws("s3api", "create-multipart-upload", "--bucket", self.bucket, "--key", key))["UploadId"]
        parts = {}
        for n in (2, 3, 1):
            size = (5 << 20) if n < 3 else 777
            path = self.write(f"part{n}", size, 20 + n)
            out = aws("s3api", "upload-part", "--bucket", self.bucket, "--key", key, "--part-number", str(n),
                      "--upload-id", up, "--body", path)
            parts[n] = json.loads(out)["ETag"]
        listing = {"Parts": [{"PartNumber": n, "ETag": parts[n]} for n in (1, 2, 3)]}
        aws("s3api", "complete-multipart-upload", "--bucket", self.bucket, "--key", key, "--upload-id", up,
            "--multipart-upload", json.dumps(listing))
        got = os.path.join(self.dir, "got")
        aws("s3api", "get-object", "--bucket", self.bucket, "--key", key, got)
        want = b"".join(open(os.path.join(self.dir, f"part{n}"), "rb").read() for n in (1, 2, 3))
        self.assertTrue(open(got, "rb").read() == want)
        self.assertEqual(staging_files(), [])


class PyArrow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fs = fs.S3FileSystem(endpoint_override=ENDPOINT.split("//")[1], scheme="http",
                                 access_key=ACCESS, secret_key=SECRET, region="us-east-1")
        cls.bucket = fresh("pa")

    def test_parquet_written_and_read(self):
        table = pa.table([pa.array(range(2_000_000)), pa.array([str(i) for i in range(2_000_000)])], ["n", "s"])
        path = f"{self.bucket}/data/table.parquet"
        pq.write_table(table, path, filesystem=self.fs)
        self.assertTrue(pq.read_table(path, filesystem=self.fs).equals(table))
        info = self.fs.get_file_info(path)
        self.assertEqual(info.type, fs.FileType.File)
        self.assertGreater(info.size, 1 << 20)

    def test_sizes_listing_and_deletes(self):
        for name, size in [("a", 6), ("dir/b", 1234), ("dir/sub/c", 1)]:
            with self.fs.open_output_stream(f"{self.bucket}/ls/{name}") as f:
                f.write(body(size, 30))
        self.assertEqual(self.fs.get_file_info(f"{self.bucket}/ls/dir/b").size, 1234)
        infos = self.fs.get_file_info(fs.FileSelector(f"{self.bucket}/ls", recursive=True))
        files = sorted((i.path, i.size) for i in infos if i.type == fs.FileType.File)
        self.assertEqual(files, [(f"{self.bucket}/ls/a", 6), (f"{self.bucket}/ls/dir/b", 1234),
                                 (f"{self.bucket}/ls/dir/sub/c", 1)])
        top = self.fs.get_file_info(fs.FileSelector(f"{self.bucket}/ls"))
        self.assertIn((f"{self.bucket}/ls/dir", fs.FileType.Directory), [(i.path, i.type) for i in top])
        self.fs.delete_file(f"{self.bucket}/ls/a")
        self.assertEqual(self.fs.get_file_info(f"{self.bucket}/ls/a").type, fs.FileType.NotFound)
        self.fs.delete_dir_contents(f"{self.bucket}/ls")
        infos = self.fs.get_file_info(fs.FileSelector(f"{self.bucket}/ls", recursive=True, allow_not_found=True))
        self.assertEqual([i for i in infos if i.type == fs.FileType.File], [])


class S3fs(unittest.TestCase):
    def test_files_and_folders(self):
        f = s3fs.S3FileSystem(key=ACCESS, secret=SECRET,
                              client_kwargs={"endpoint_url": ENDPOINT, "region_name": "us-east-1"})
        bucket = fresh("fs")
        f.mkdir(bucket)
        f.pipe(f"{bucket}/dir/a.txt", b"abc")
        f.pipe(f"{bucket}/dir/b.txt", b"defg")
        self.assertEqual(f.ls(f"{bucket}/dir"), [f"{bucket}/dir/a.txt", f"{bucket}/dir/b.txt"])
        self.assertEqual(f.info(f"{bucket}/dir/b.txt")["size"], 4)
        self.assertEqual(f.cat(f"{bucket}/dir/a.txt"), b"abc")
        data = body(12 << 20, 40)
        with f.open(f"{bucket}/big", "wb", block_size=5 << 20) as out:
            out.write(data)
        self.assertTrue(f.cat(f"{bucket}/big") == data)
        f.rm(f"{bucket}/dir", recursive=True)
        self.assertEqual(f.find(bucket), [f"{bucket}/big"])


class Rclone(unittest.TestCase):
    def test_copy_ls_check_delete(self):
        remote = f"t:{fresh('rc')}"
        env = {"RCLONE_CONFIG_T_TYPE": "s3", "RCLONE_CONFIG_T_PROVIDER": "Other",
               "RCLONE_CONFIG_T_ENDPOINT": ENDPOINT, "RCLONE_CONFIG_T_ACCESS_KEY_ID": ACCESS,
               "RCLONE_CONFIG_T_SECRET_ACCESS_KEY": SECRET}
        ENV.update(env)
        rclone = os.environ.get("MKV_RCLONE", "rclone")
        src = tempfile.mkdtemp()
        try:
            for i, rel in enumerate(["a", "sub/b", "big"]):
                os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(src, rel), "wb") as f:
                    f.write(body(30 << 20 if rel == "big" else 500 + i, 50 + i))
            run(rclone, "-q", "mkdir", remote)
            run(rclone, "-q", "copy", src, remote)
            listed = run(rclone, "ls", remote)
            self.assertEqual(sorted(line.split()[1] for line in listed.splitlines()), ["a", "big", "sub/b"])
            run(rclone, "-q", "check", src, remote)
            run(rclone, "-q", "delete", remote)
            self.assertEqual(run(rclone, "ls", remote), "")
        finally:
            shutil.rmtree(src)


class OriginalS3Test(unittest.TestCase):
    """The eight cases of the original's tools/s3test.py: boto3 writes and
    lists, and reads back (a case the original could only expect to fail);
    pyarrow (anonymous, as there) writes, sizes, lists, deletes a file and
    a folder's contents, and round-trips small and large parquet tables."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.pa = fs.S3FileSystem(endpoint_override=ENDPOINT.split("//")[1], scheme="http", anonymous=True)

    def key(self):
        return "bucket/" + fresh("swag")

    def write(self, path, data):
        with self.pa.open_output_stream(path) as f:
            f.write(data)

    def test_writelist(self):
        key = fresh("swag")
        self.s3.put_object(Body=b"hello1", Bucket="boto", Key=key)
        self.assertIn(key, [x["Key"] for x in self.s3.list_objects_v2(Bucket="boto")["Contents"]])

    def test_writeread(self):
        key = fresh("swag")
        self.s3.put_object(Body=b"hello1", Bucket="boto", Key=key)
        self.assertEqual(self.s3.get_object(Bucket="boto", Key=key)["Body"].read(), b"hello1")

    def test_fileinfo(self):
        path = self.key() + "-fileinfo"
        self.write(path, b"hello1")
        self.assertEqual(self.pa.get_file_info(path).size, 6)

    def test_fileinfo_list(self):
        path = self.key() + "-listdir"
        self.write(path, b"hello1")
        infos = self.pa.get_file_info(fs.FileSelector("bucket/", recursive=True))
        self.assertIn(path, [x.path for x in infos])

    def test_deletedir(self):
        path = self.key() + "-deltest"
        self.write(path, b"hello1")
        self.pa.delete_dir_contents("bucket")
        self.assertEqual(self.pa.get_file_info(path).type, fs.FileType.NotFound)

    def test_deletefile(self):
        path = self.key() + "-delftest"
        self.write(path, b"hello1")
        self.assertEqual(self.pa.get_file_info(path).size, 6)
        self.pa.delete_file(path)
        self.assertEqual(self.pa.get_file_info(path).type, fs.FileType.NotFound)

    def test_largerw(self):
        table = pa.table([pa.array(range(10_000_000))], ["a"])
        path = self.key()
        pq.write_table(table, path, filesystem=self.pa)
        self.assertTrue(pq.read_table(path, filesystem=self.pa).equals(table))
        self.pa.delete_file(path)

    def test_smallrw(self):
        table = pa.table([pa.array([0, 1, 2, 3])], ["a"])
        path = self.key()
        pq.write_table(table, path, filesystem=self.pa)
        self.assertTrue(pq.read_table(path, filesystem=self.pa).equals(table))
        self.pa.delete_file(path)


if __name__ == "__main__":
    unittest.main()
