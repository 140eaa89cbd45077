"""What the S3 client suites share: the endpoint and volumes under test
(from the environment the Rust harness sets), clients, and looks at the
volumes' disks to tell what was stored."""

import base64
import hashlib
import http.client
import os
import urllib.parse
import uuid

import boto3
from botocore.config import Config

ENDPOINT = os.environ["MKV_ENDPOINT"]
VOLUME_DIRS = [d for d in os.environ.get("MKV_VOLUME_DIRS", "").split(":") if d]
BACKEND = os.environ.get("MKV_BACKEND", "volume-uring")
ACCESS, SECRET = os.environ.get("MKV_CREDENTIALS", "user:password").split(":", 1)


def client(**config):
    """A boto3 S3 client on the endpoint, retrying nothing (a retry would
    hide a first answer that was wrong)."""
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, **config)
    return boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=ACCESS,
                        aws_secret_access_key=SECRET, region_name="us-east-1", config=cfg)


def fresh(prefix="t"):
    """A name no other test uses (also a valid bucket name)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def key2path(key):
    """The original's file name of an mkv key (`/bucket/key`)."""
    raw = key.encode() if isinstance(key, str) else key
    digest = hashlib.md5(raw).digest()
    return f"{digest[0]:02x}/{digest[1]:02x}/{base64.b64encode(raw).decode()}"


def files_of(key):
    """The volume files that hold `key`, across volumes and subvolumes."""
    want = key2path(key)
    found = []
    for root in VOLUME_DIRS:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.relpath(path, root).endswith(want):
                    found.append(path)
    return found


def staging_files():
    """Files left in the volumes' staging folders (`.mkv-parts`)."""
    found = []
    for root in VOLUME_DIRS:
        for dirpath, _, names in os.walk(root):
            if ".mkv-parts" in dirpath.split(os.sep):
                found.extend(os.path.join(dirpath, n) for n in names)
    return found


def body(n, seed=0):
    """`n` bytes that differ from one seed to the next."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048
    return (block * (n // len(block) + 1))[:n]


def trailer_checksums(s3, algorithm="CRC32"):
    """Makes `s3` send its checksums as trailers of an aws-chunked body
    (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), as botocore does over TLS."""
    def to_trailer(params, **_):
        checksum = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if isinstance(checksum, dict):
            checksum["in"] = "trailer"
            checksum["algorithm"] = algorithm.lower()
            checksum["name"] = f"x-amz-checksum-{algorithm.lower()}"
    s3.meta.events.register("before-call.s3.*", to_trailer)
    return s3


def raw(method, path, headers=None, data=b""):
    """One request sent as given (no signing): (status, headers, body)."""
    url = urllib.parse.urlsplit(ENDPOINT)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request(method, path, body=data, headers=headers or {})
    r = conn.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    conn.close()
    return out


def aws_chunked(data, trailers=(), chunk=64 * 1024):
    """`data` as an unsigned aws-chunked body with `trailers` (name, value)."""
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}:{value}\r\n".encode()
    return out + b"\r\n"


def crc32_b64(data):
    import zlib
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
