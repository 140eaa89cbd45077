"""S3 workloads for bench.py: GetObject against the volume it reads from,
and a multipart upload (the aws CLI's and a lean client's) against a plain
PUT.

    python3 perf/bench.py s3-get            # GetObject 1 GiB via the master vs the volume
    python3 perf/bench.py s3-multipart      # aws s3 cp of 1 GiB vs a plain PUT
"""

import itertools
import os
import re
import statistics
import subprocess
import time

import harness
from harness import median_pair


def venv_tool(name):
    """A tool from the virtualenv `.ci/run` makes (the aws CLI)."""
    path = os.path.join(harness.ROOT, ".venv", "bin", name)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: .ci/run makes the virtualenv")
    return path


S3_HEADERS = ["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]


def curl_s3_get(url):
    """Bytes/s of an S3 GetObject (unsigned: the master has no credentials)."""
    out = subprocess.run(["curl", "-sf", *S3_HEADERS, "-o", "/dev/null", "-w", "%{speed_download}", url],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def s3_get(args, tmp):
    """S3 GetObject of a 1 GiB object through the master (the master streams
    it from a volume) against a GET straight from that volume, curl -o
    /dev/null; then 16 such GetObjects at once, for the master's peak RSS."""
    mkv = harness.start_mkv(tmp, harness.three_volumes(tmp, 1), args.threads)
    big = os.path.join(tmp, "big")
    harness.make_big_file(big, 1 << 30)
    subprocess.run(["curl", "-sf", "-T", big, mkv.url + "/bench/big"], check=True)
    os.remove(big)
    location = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{redirect_url}", mkv.url + "/bench/big"],
                              check=True, capture_output=True, text=True).stdout
    for i in range(3):  # every replica into the page cache: the master picks one
        for root, _, files in os.walk(os.path.join(tmp, f"v{i}")):
            for name in files:
                harness.cat_to_null(os.path.join(root, name))
    sides = {
        "volume GET": lambda: harness.curl_get_bytes_per_s(location) / 1e9,
        "S3 GetObject via mkv": lambda: curl_s3_get(mkv.url + "/bench/big") / 1e9,
    }
    res = {"1 GiB GET": median_pair(sides, args.rounds, "GB/s")}
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sf", *S3_HEADERS, "-o", "/dev/null", mkv.url + "/bench/big"])
             for _ in range(16)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("a concurrent GetObject failed")
    res["16 concurrent GetObjects of 1 GiB (s)"] = round(time.perf_counter() - start, 2)
    res["mkv peak RSS (KiB)"] = mkv.peak_rss_kib()
    return res


def complete_seconds(log):
    """The elapsed time of the last CompleteMultipartUpload in a -v log."""
    found = None
    with open(log) as f:
        for line in f:
            if 'method="POST"' in line and " status=200 " in line:
                m = re.search(r" ms=([\d.]+)", line)
                if m:
                    found = float(m.group(1)) / 1e3
    if found is None:
        raise SystemExit(f"no CompleteMultipartUpload in {log}")
    return found


def s3_multipart(args, tmp):
    """A 1 GiB upload with `aws s3 cp` (its defaults: 8 MiB parts, 10 at a
    time, so multipart) against a plain PUT of the same file through the
    master (curl -T) and against one PutObject of it from the same aws CLI
    (`s3api put-object`: the client's own checksums and signing, no
    parts), 3 volume-uring replicas; and how long Complete took, from the
    master's -v log."""
    aws = venv_tool("aws")
    mkv = harness.start_mkv(tmp, harness.three_volumes(tmp, 1), args.threads, extra=["-v"])
    log = os.path.join(tmp, "mkv.log")
    big = os.path.join(tmp, "big")
    harness.make_big_file(big, 1 << 30)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1")
    subprocess.run([aws, "--endpoint-url", mkv.url, "s3", "mb", "s3://bench"], env=env,
                   check=True, capture_output=True)
    counter = itertools.count()
    completes = []

    def multipart():
        key = f"s3://bench/mp{next(counter)}"
        start = time.perf_counter()
        subprocess.run([aws, "--endpoint-url", mkv.url, "s3", "cp", "--quiet", big, key], env=env, check=True)
        secs = time.perf_counter() - start
        completes.append(complete_seconds(log))
        return secs

    def plain():
        return harness.timed(["curl", "-sf", "-o", "/dev/null", "-T", big, f"{mkv.url}/bench/plain{next(counter)}"])

    def aws_single():
        key = f"plain-aws{next(counter)}"
        return harness.timed([aws, "--endpoint-url", mkv.url, "s3api", "put-object", "--bucket", "bench",
                              "--key", key, "--body", big], env=env)

    def lean():
        start = time.perf_counter()
        lean_multipart(mkv.hostport, f"/bench/lean{next(counter)}", big)
        return time.perf_counter() - start

    sides = {"plain PUT": plain, "aws s3api put-object (one PUT)": aws_single,
             "aws s3 cp (multipart)": multipart, "lean client multipart": lean}
    res = {"1 GiB upload": harness.median_many(sides, args.rounds, "s")}
    up = res["1 GiB upload"]
    for name in ("aws s3 cp (multipart)", "lean client multipart", "aws s3api put-object (one PUT)"):
        res[f"{name} / plain PUT"] = round(up[name]["median"] / up["plain PUT"]["median"], 3)
    res["aws s3 cp (multipart) / aws s3api put-object (one PUT)"] = round(
        up["aws s3 cp (multipart)"]["median"] / up["aws s3api put-object (one PUT)"]["median"], 3)
    res["CompleteMultipartUpload (s)"] = {"median": statistics.median(completes), "samples": completes}
    res["mkv peak RSS (KiB)"] = mkv.peak_rss_kib()
    return res


def lean_multipart(hostport, key, path, part=8 << 20, parallel=10):
    """A multipart upload as the aws CLI makes it (8 MiB parts, 10 at a
    time) from a client that spends next to no CPU: no checksums, no
    signatures (the master has no credentials), parts sent from a mmap."""
    import concurrent.futures
    import http.client
    import mmap

    def call(method, target, body=b""):
        c = http.client.HTTPConnection(hostport)
        c.request(method, target, body=body, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        r = c.getresponse()
        data, etag = r.read(), r.getheader("ETag")
        c.close()
        if r.status != 200:
            raise SystemExit(f"{method} {target}: {r.status} {data[:200]!r}")
        return data, etag

    upload = re.search(rb"<UploadId>([^<]+)</UploadId>", call("POST", key + "?uploads")[0]).group(1).decode()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        view = memoryview(m)
        offsets = range(0, len(m), part)
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            etags = list(pool.map(
                lambda i_off: call("PUT", f"{key}?partNumber={i_off[0] + 1}&uploadId={upload}",
                                   view[i_off[1]:i_off[1] + part])[1],
                enumerate(offsets)))
        view.release()
    body = "".join(f"<Part><PartNumber>{i + 1}</PartNumber><ETag>{e}</ETag></Part>" for i, e in enumerate(etags))
    call("POST", f"{key}?uploadId={upload}", f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode())


def register(workload):
    workload(s3_get)
    workload(s3_multipart)
