#!/usr/bin/env python3
"""Side-by-side benchmarks: this project against stock nginx (and the disk).

Every claim is a ratio measured in one run: A and B alternate (A B A B ...),
each workload runs at least 3 rounds, and the median of each side is compared.
Absolute numbers are context only; the machine is shared and noisy.

    cargo build --release
    python3 perf/bench.py volume-small      # 4 KiB GETs with wrk
    python3 perf/bench.py volume-large      # 1 GiB cached GET throughput
    python3 perf/bench.py volume-put        # 1 GiB PUT, fsync on/off, vs nginx and dd
    python3 perf/bench.py s3-get            # GetObject 1 GiB via the master vs the volume
    python3 perf/bench.py s3-multipart      # aws s3 cp of 1 GiB vs a plain PUT
    python3 perf/bench.py listing --original BIN  # ?list / ListObjectsV2 vs the original
    python3 perf/bench.py big-put|big-many|big-mix  # big values (perf/bigvalues.py)
    python3 perf/bench.py rebuild-1m --original BIN [--cold]  # 1M-key rebuild vs the original
    python3 perf/bench.py all

Options: --rounds N (default 3), --duration S (wrk seconds, default 10),
--threads N (server threads/workers, default: cores). Results are printed and
written to perf/results/<workload>.json.
"""

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import median_pair, wrk  # noqa: E402
import bigvalues  # noqa: E402
import rebuilds  # noqa: E402

WORKLOADS = {}


def workload(fn):
    WORKLOADS[fn.__name__.replace("_", "-")] = fn
    return fn


@workload
def volume_small(args, tmp):
    """4 KiB GETs with wrk -t2 -c100: one hot file, and 1,000 files at random."""
    data = os.path.join(tmp, "data")
    harness.make_files(data, count=1000, size=4096)
    ngx = harness.start_nginx(data, tmp, args.threads)
    vol = harness.start_volume(data, tmp, args.threads)
    results = {}
    for name, script in [("one file", None), ("1000 files", "random_files.lua")]:
        path = "/00/00/f0" if script is None else "/"
        sides = {
            "nginx": lambda: wrk(ngx.url + path, args.duration, script),
            "volume-uring": lambda: wrk(vol.url + path, args.duration, script),
        }
        results[name] = median_pair(sides, args.rounds, "req/s")
    results["volume-uring peak RSS (KiB)"] = vol.peak_rss_kib()
    return results


@workload
def volume_large(args, tmp):
    """GET of a 1 GiB file that is in the page cache, with curl -o /dev/null."""
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    big = os.path.join(data, "big")
    harness.make_big_file(big, 1 << 30)
    harness.cat_to_null(big)  # into the page cache
    ngx = harness.start_nginx(data, tmp, args.threads)
    vol = harness.start_volume(data, tmp, args.threads)
    sides = {
        "nginx": lambda: harness.curl_get_bytes_per_s(ngx.url + "/big") / 1e9,
        "volume-uring": lambda: harness.curl_get_bytes_per_s(vol.url + "/big") / 1e9,
    }
    return {"1 GiB GET": median_pair(sides, args.rounds, "GB/s"),
            "volume-uring peak RSS (KiB)": vol.peak_rss_kib()}


@workload
def volume_put(args, tmp):
    """PUT of a 1 GiB file (curl -T), against nginx and against dd's own time."""
    src = os.path.join(tmp, "src")
    harness.make_big_file(src, 1 << 30)
    harness.cat_to_null(src)
    d_ngx, d_sync, d_nosync, d_dd = (os.path.join(tmp, n) for n in ("ngx", "sync", "nosync", "dd"))
    for d in (d_ngx, d_sync, d_nosync, d_dd):
        os.makedirs(d)
    ngx = harness.start_nginx(d_ngx, tmp, args.threads)
    vol_sync = harness.start_volume(d_sync, tmp, args.threads, name="volume-fsync")
    vol_nosync = harness.start_volume(d_nosync, tmp, args.threads, ["--no-fsync"], name="volume-nofsync")

    # Each round writes a new file into an emptied folder, after a sync, so
    # no round pays for another's writeback or overwrites warm blocks.
    def put(url, folder):
        def run():
            harness.empty_folder(folder)
            harness.sync_disk()
            return harness.timed(["curl", "-sf", "-o", "/dev/null", "-T", src, url])
        return run

    def dd():
        harness.empty_folder(d_dd)
        harness.sync_disk()
        out = os.path.join(d_dd, "f")
        return harness.timed(["dd", f"if={src}", f"of={out}", "bs=1M", "conv=fdatasync", "status=none"])

    sides = {
        "dd conv=fdatasync": dd,
        "nginx (no fsync)": put(ngx.url + "/v", d_ngx),
        "volume-uring fsync": put(vol_sync.url + "/v", d_sync),
        "volume-uring --no-fsync": put(vol_nosync.url + "/v", d_nosync),
    }
    res = harness.median_many(sides, args.rounds, "s")
    res["volume-uring peak RSS (KiB)"] = vol_sync.peak_rss_kib()
    return res


def nginx_404(tmp, threads):
    return harness.start_nginx(tmp, tmp, threads, name="nginx-404",
                               template=os.path.join(harness.PERF, "nginx-return404.conf"))


@workload
def master_missing(args, tmp):
    """GET of missing keys through the master vs nginx `return 404;` (wrk -t2 -c100)."""
    ngx = nginx_404(tmp, args.threads)
    mkv = harness.start_mkv(tmp, harness.three_volumes(tmp, 1), args.threads)
    harness.http("PUT", mkv.url + "/present", b"x")
    sides = {
        "nginx return 404": lambda: wrk(ngx.url + "/missing", args.duration, allow_errors=True),
        "mkv": lambda: wrk(mkv.url + "/missing", args.duration, allow_errors=True),
    }
    return {"missing-key GET": median_pair(sides, args.rounds, "req/s"),
            "mkv peak RSS (KiB)": mkv.peak_rss_kib()}


@workload
def master_existing(args, tmp):
    """GET of existing keys (302 after a HEAD to a volume) vs nginx `return 404;`."""
    ngx = nginx_404(tmp, args.threads)
    mkv = harness.start_mkv(tmp, harness.three_volumes(tmp, 1), args.threads)
    for i in range(1000):
        assert harness.http("PUT", f"{mkv.url}/key/{i}", b"value") == 201
    sides = {
        "nginx return 404": lambda: wrk(ngx.url + "/x", args.duration, allow_errors=True),
        "mkv 302": lambda: wrk(mkv.url + "/", args.duration, "existing_keys.lua"),
    }
    return {"existing-key GET": median_pair(sides, args.rounds, "req/s"),
            "original mkv (PERF.md anchor)": {"median": 24000, "unit": "req/s"},
            "mkv peak RSS (KiB)": mkv.peak_rss_kib()}


@workload
def mix(args, tmp):
    """16 workers doing PUT + GET (following the 302) + DELETE of a small
    value (the original's thrasher). The master syncs every acknowledged
    index write in all modes; "durable" volumes fsync each value before
    answering, "--no-fsync" volumes do not (nor does nginx, nor the original)."""
    thrasher = os.path.join(harness.RELEASE, "thrasher")
    durable = harness.start_mkv(tmp, harness.three_volumes(tmp, 1), args.threads, name="mkv-durable")
    fast_vols = [harness.start_volume(os.path.join(tmp, f"f{i}"), tmp, 1, ["--no-fsync"], name=f"fast{i}")
                 for i in range(3)]
    fast = harness.start_mkv(tmp, fast_vols, args.threads, name="mkv-fast")
    ngx_vols = [harness.start_nginx(os.path.join(tmp, f"n{i}"), tmp, 1, name=f"nginx{i}") for i in range(3)]
    over_nginx = harness.start_mkv(tmp, ngx_vols, args.threads, name="mkv-nginx")

    def run(server):
        out = subprocess.run([thrasher, "--master", server.hostport, "--count", str(args.mix_count)],
                             check=True, capture_output=True, text=True).stdout
        return float(out.split("ops/s:")[1].split()[0])

    sides = {
        "mkv + volume-uring (durable)": lambda: run(durable),
        "mkv + volume-uring --no-fsync": lambda: run(fast),
        "mkv + nginx volumes": lambda: run(over_nginx),
    }
    res = harness.median_many(sides, args.rounds, "ops/s")
    res["original mkv + nginx (PERF.md anchor)"] = {"median": 1620, "unit": "ops/s"}
    for name in sides:
        res[f"{name} / original"] = round(res[name]["median"] / 1620, 2)
    return res


def box_busy_seconds():
    """CPU time the whole machine has spent not idle, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@workload
def mix_floor(args, tmp):
    """A lower bound on the machine CPU one mix op needs, from its parts done
    by the cheapest means at hand, against the CPU an op may use at the
    target rate (4x the original's 1,620 ops/s, all cores busy).

    An op is 11 HTTP exchanges on loopback: PUT, GET and DELETE to the
    master, the master's 3 PUTs, 1 HEAD and 3 DELETEs to volumes, the
    client's GET from a volume. Each is costed as one wrk -t2 -c16 request
    to nginx `return 404;` (machine CPU / requests): no parsing of
    anything, no files. The files are costed by `fsfloor`: the op's
    syscalls in a loop on one thread, on the filesystem the benchmarks use,
    without fsync. Index writes and the load generator's own work are not
    counted, so the real need is higher. "New folders" is a fresh cluster,
    as the mix workload runs: most keys get a new xx/yy folder."""
    ngx = nginx_404(tmp, args.threads)
    fsfloor = os.path.join(harness.RELEASE, "fsfloor")

    def exchange_us():
        busy = box_busy_seconds()
        rate = wrk(ngx.url + "/x", args.duration, connections=16, allow_errors=True)
        return (box_busy_seconds() - busy) * 1e6 / (rate * args.duration)

    rounds = itertools.count()

    def files_us(fresh):
        # New folders: a folder of its own per round (deleting the last
        # round's tree would leave the filesystem busier than a cluster's).
        def run():
            folder = os.path.join(tmp, f"files-new-{next(rounds)}" if fresh else "files")
            os.makedirs(folder, exist_ok=True)
            out = subprocess.run([fsfloor, folder, "--count", str(args.mix_count)],
                                 check=True, capture_output=True, text=True).stdout
            return float(out.split("cpu us/op:")[1].split()[0])
        return run

    res = harness.median_many({"HTTP exchange (us of CPU)": exchange_us,
                               "files of an op, new folders (us of CPU)": files_us(True),
                               "files of an op, folders exist (us of CPU)": files_us(False)},
                              args.rounds, "us")
    # A floor takes the cheapest round of each part.
    exchange = min(res["HTTP exchange (us of CPU)"]["samples"])
    budget = os.cpu_count() * 1e6 / (4 * 1620)
    res["budget per op at 4x the original (us)"] = round(budget, 1)
    for folders in ["new folders", "folders exist"]:
        floor = 11 * exchange + min(res[f"files of an op, {folders} (us of CPU)"]["samples"])
        res[f"floor per op, {folders} (us)"] = round(floor, 1)
        res[f"floor / budget, {folders}"] = round(floor / budget, 2)
        res[f"best rate the floor allows, {folders} (ops/s)"] = round(os.cpu_count() * 1e6 / floor)
        print(f"  => {folders}: floor {floor:.0f} us/op against a budget of {budget:.0f} us/op", flush=True)
    return res


@workload
def put_1g(args, tmp):
    """PUT of a 1 GiB value through the master to 3 volume-uring replicas (all
    on this one disk, fsync on) vs dd conv=fdatasync writing the same 3 GiB."""
    src = os.path.join(tmp, "src")
    harness.make_big_file(src, 1 << 30)
    harness.cat_to_null(src)
    vols = harness.three_volumes(tmp, 1)
    mkv = harness.start_mkv(tmp, vols, args.threads)
    d_dd = os.path.join(tmp, "dd")
    os.makedirs(d_dd)
    counter = iter(range(1000))

    def put():
        for i in range(3):
            harness.empty_tree(os.path.join(tmp, f"v{i}"))
        harness.sync_disk()
        return harness.timed(["curl", "-sf", "-o", "/dev/null", "-T", src, f"{mkv.url}/big{next(counter)}"])

    def dd():
        harness.empty_folder(d_dd)
        harness.sync_disk()
        return harness.timed(["sh", "-c", " && ".join(
            f"dd if={src} of={d_dd}/f{i} bs=1M conv=fdatasync status=none" for i in range(3))])

    res = median_pair({"dd conv=fdatasync, 3 GiB": dd, "mkv PUT 1 GiB x3": put}, args.rounds, "s")
    res["mkv peak RSS (KiB)"] = mkv.peak_rss_kib()
    res["volume peak RSS (KiB)"] = max(v.peak_rss_kib() for v in vols)
    return res


def fill(server, count, size):
    thrasher = os.path.join(harness.RELEASE, "thrasher")
    subprocess.run([thrasher, "--master", server.hostport, "--count", str(count), "--fill", str(size)],
                   check=True, capture_output=True)


@workload
def rebuild(args, tmp):
    """mkv rebuild of 30,000 keys (3 replicas, 10 subvolumes) over 4 volumes:
    volume-uring volumes (one recursive listing each) and nginx volumes
    (crawled folder by folder); keys/s against the original's rate here."""
    res = {}
    for kind in ("volume-uring", "nginx"):
        if kind == "nginx":
            vols = [harness.start_nginx(os.path.join(tmp, f"rn{i}"), tmp, 1, name=f"rebuild-nginx{i}") for i in range(4)]
        else:
            vols = [harness.start_volume(os.path.join(tmp, f"ru{i}"), tmp, 1, ["--no-fsync"], name=f"rebuild-vol{i}")
                    for i in range(4)]
        mkv = harness.start_mkv(tmp, vols, args.threads, name=f"fill-{kind}")
        fill(mkv, args.rebuild_keys, 100)
        harness.stop(mkv)
        names = ",".join(v.hostport for v in vols)

        def run(kind=kind, names=names):
            db = os.path.join(tmp, f"rebuilt-{kind}")
            shutil.rmtree(db, ignore_errors=True)
            secs, rss = harness.timed_rss([os.path.join(harness.RELEASE, "mkv"), "-volumes", names, "-db", db,
                                           "rebuild"])
            rates.setdefault(kind, []).append(rss)
            return args.rebuild_keys / secs

        rates = {}
        res[f"rebuild over {kind} volumes"] = harness.median_many({kind: run}, args.rounds, "keys/s")[kind]
        res[f"rebuild over {kind} volumes"]["peak RSS (KiB)"] = max(rates[kind])
    res["original (PERF.md anchor, 65k keys)"] = {"median": 6200, "unit": "keys/s"}
    for kind in ("volume-uring", "nginx"):
        res[f"{kind} / original"] = round(res[f"rebuild over {kind} volumes"]["median"] / 6200, 2)
    return res


@workload
def rebalance(args, tmp):
    """mkv rebalance from 4 volume-uring volumes to 3 and back: keys/s for
    small values, and peak RSS of the command moving 1 GiB values."""
    vols = [harness.start_volume(os.path.join(tmp, f"b{i}"), tmp, 1, ["--no-fsync"], name=f"bal{i}") for i in range(4)]
    mkv = harness.start_mkv(tmp, vols, args.threads, name="fill-small")
    fill(mkv, args.rebuild_keys, 100)
    harness.stop(mkv)
    mkvbin = os.path.join(harness.RELEASE, "mkv")
    four = ",".join(v.hostport for v in vols)
    three = ",".join(v.hostport for v in vols[:3])
    db = os.path.join(tmp, "fill-small-index")
    res = {}
    for label, names in (("4 -> 3", three), ("3 -> 4", four)):
        secs, rss = harness.timed_rss([mkvbin, "-volumes", names, "-db", db, "rebalance"])
        res[f"rebalance {label}, {args.rebuild_keys} keys of 100 B"] = {
            "keys/s": round(args.rebuild_keys / secs), "seconds": round(secs, 2), "peak RSS (KiB)": rss}
    big = [harness.start_volume(os.path.join(tmp, f"g{i}"), tmp, 1, ["--no-fsync"], name=f"big{i}") for i in range(4)]
    mkv = harness.start_mkv(tmp, big, args.threads, name="fill-big")
    fill(mkv, 4, 1 << 30)
    harness.stop(mkv)
    db = os.path.join(tmp, "fill-big-index")
    three = ",".join(v.hostport for v in big[:3])
    secs, rss = harness.timed_rss([mkvbin, "-volumes", three, "-db", db, "rebalance"])
    res["rebalance 4 -> 3, 4 keys of 1 GiB"] = {"seconds": round(secs, 2), "peak RSS (KiB)": rss}
    return res


@workload
def versus(args, tmp):
    """This build against another (--baseline DIR with its `mkv` and `volume`),
    side by side, on the request paths a change must not slow down:
    missing-key GET and existing-key GET through the master (wrk -t2 -c100),
    the 16-worker PUT+GET+DELETE mix through the master (thrasher), volume
    4 KiB GET (wrk), volume 1 GiB cached GET (curl), and ListObjectsV2 pages
    over --list-keys keys (1 and 8 clients)."""
    if not args.baseline:
        raise SystemExit("versus needs --baseline DIR (a folder with the other build's mkv and volume)")
    builds = {"before": args.baseline, "after": harness.RELEASE}
    res = {}
    data = os.path.join(tmp, "data")
    harness.make_files(data, count=1000, size=4096)
    big = os.path.join(data, "big")
    harness.make_big_file(big, 1 << 30)
    harness.cat_to_null(big)
    vols = {b: harness.start_volume(data, tmp, args.threads, name=f"volume-{b}", bindir=d)
            for b, d in builds.items()}
    res["volume 4 KiB GET"] = median_pair(
        {b: (lambda v=v: wrk(v.url + "/00/00/f0", args.duration)) for b, v in vols.items()},
        args.rounds, "req/s")
    res["volume 1 GiB GET"] = median_pair(
        {b: (lambda v=v: harness.curl_get_bytes_per_s(v.url + "/big") / 1e9) for b, v in vols.items()},
        args.rounds, "GB/s")
    masters = {}
    for b, d in builds.items():
        own = [harness.start_volume(os.path.join(tmp, f"{b}-v{i}"), tmp, 1, name=f"{b}-volume{i}", bindir=d)
               for i in range(3)]
        masters[b] = harness.start_mkv(tmp, own, args.threads, name=f"mkv-{b}", bindir=d)
        for i in range(1000):
            assert harness.http("PUT", f"{masters[b].url}/key/{i}", b"value") == 201
    res["missing-key GET"] = median_pair(
        {b: (lambda m=m: wrk(m.url + "/missing", args.duration, allow_errors=True)) for b, m in masters.items()},
        args.rounds, "req/s")
    res["existing-key GET"] = median_pair(
        {b: (lambda m=m: wrk(m.url + "/", args.duration, "existing_keys.lua")) for b, m in masters.items()},
        args.rounds, "req/s")
    thrasher = os.path.join(harness.RELEASE, "thrasher")

    def mix_run(m):
        out = subprocess.run([thrasher, "--master", m.hostport, "--count", str(args.mix_count)],
                             check=True, capture_output=True, text=True).stdout
        return float(out.split("ops/s:")[1].split()[0])
    res["PUT+GET+DELETE mix (16 workers, durable volumes)"] = median_pair(
        {b: (lambda m=m: mix_run(m)) for b, m in masters.items()}, args.rounds, "ops/s")
    for b in builds:
        res[f"mkv peak RSS {b} (KiB)"] = masters[b].peak_rss_kib()
        res[f"volume peak RSS {b} (KiB)"] = vols[b].peak_rss_kib()
        harness.stop(masters[b])
    res.update(listing_versus(args, tmp, builds))
    return res


def listing_versus(args, tmp, builds):
    """ListObjectsV2 pages of 1,000 keys from random places in an index of
    --list-keys (perf/seed-index), each build's master over a copy of it
    (wrk -t1, 1 and 8 connections)."""
    seeder = os.path.join(tmp, "seed-index")
    go_build(os.path.join(harness.PERF, "seed-index"), seeder)
    vols = harness.three_volumes(tmp, 1, prefix="list-")
    names = ",".join(v.hostport for v in vols)
    seed = os.path.join(tmp, "list-seed")
    subprocess.run([seeder, seed, str(args.list_keys), names], check=True)
    masters = {}
    for b, d in builds.items():
        shutil.copytree(seed, os.path.join(tmp, f"list-{b}-index"))
        masters[b] = harness.start_mkv(tmp, vols, args.threads, name=f"list-{b}", bindir=d)
    v2 = dict(os.environ, LIST="v2")
    res = {}
    for c in (1, 8):
        res[f"ListObjectsV2 pages, {c} clients"] = median_pair(
            {b: (lambda m=m, c=c: list_pages(m, c, args.duration, v2)) for b, m in masters.items()},
            args.rounds, "pages/s")
    for b, m in masters.items():
        res[f"mkv peak RSS {b}, listing (KiB)"] = m.peak_rss_kib()
        harness.stop(m)
    return res


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


@workload
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


@workload
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


def go_build(src, out):
    """Builds a Go program with Debian's Go and goleveldb packages."""
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOCACHE=os.path.join(os.path.dirname(out), "gocache"))
    subprocess.run(["go", "build", "-o", out, "."], cwd=src, env=env, check=True)


def start_original(binary, db, volumes, tmp):
    port = harness.free_port()
    p = harness.spawn([binary, "-port", str(port), "-db", db, "-volumes", volumes, "server"],
                      os.path.join(tmp, "original.log"))
    harness.wait_port(port, p, "original mkv")
    return harness.Server("original", p, f"127.0.0.1:{port}")


def wrk_bg(url, duration, script, connections, env=None):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", os.path.join(harness.PERF, script), url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)


def list_pages(server, connections, duration, env=None):
    """Pages/s of perf/list_pages.lua against `server` (wrk -t1); with
    env LIST=v2, ListObjectsV2 pages."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s",
           os.path.join(harness.PERF, "list_pages.lua"), server.url + "/"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"listing saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


@workload
def listing(args, tmp):
    """Pages of 1,000 keys from 1,000,000 (an index perf/seed-index writes):
    mkv's `?list` and ListObjectsV2 against the original master's `?list`
    (--original: a build of the original), wrk -t1 with 1 and 8 connections
    from random places (perf/list_pages.lua); then missing-key GETs (wrk -t1
    -c50) on mkv while 8 clients list, against nginx `return 404;` under the
    same listing load."""
    if not args.original:
        raise SystemExit("listing needs --original BINARY (the original master, built with Go)")
    seeder = os.path.join(tmp, "seed-index")
    go_build(os.path.join(harness.PERF, "seed-index"), seeder)
    vols = harness.three_volumes(tmp, 1)
    names = ",".join(v.hostport for v in vols)
    seed = os.path.join(tmp, "seed")
    subprocess.run([seeder, seed, str(args.list_keys), names], check=True)
    mine, theirs = os.path.join(tmp, "mkv-index"), os.path.join(tmp, "original-index")
    shutil.copytree(seed, mine)
    shutil.copytree(seed, theirs)
    orig = start_original(args.original, theirs, names, tmp)
    mkv = harness.start_mkv(tmp, vols, args.threads)
    v2 = dict(os.environ, LIST="v2")

    def pages(server, connections, env=None):
        return list_pages(server, connections, args.duration, env)

    res = {}
    for c in (1, 8):
        sides = {
            "original ?list": lambda c=c: pages(orig, c),
            "mkv ?list": lambda c=c: pages(mkv, c),
            "mkv ListObjectsV2": lambda c=c: pages(mkv, c, v2),
        }
        out = harness.median_many(sides, args.rounds, "pages/s")
        base = out["original ?list"]["median"]
        for name in ("mkv ?list", "mkv ListObjectsV2"):
            out[f"{name} / original"] = round(out[name]["median"] / base, 3)
        res[f"{c} client(s)"] = out
    ngx = nginx_404(tmp, args.threads)

    def misses_during_listing(target):
        bg = wrk_bg(mkv.url + "/", args.duration + 2, "list_pages.lua", 8)
        try:
            return wrk(target.url + "/missing", args.duration, connections=50, threads=1, allow_errors=True)
        finally:
            bg.wait()

    res["missing-key GET while 8 clients list"] = median_pair(
        {"nginx return 404": lambda: misses_during_listing(ngx),
         "mkv": lambda: misses_during_listing(mkv)}, args.rounds, "req/s")
    res["mkv peak RSS (KiB)"] = mkv.peak_rss_kib()
    return res


bigvalues.register(workload, start_original)
rebuilds.register(workload, start_original)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=sorted(WORKLOADS) + ["all"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--mix-count", type=int, default=10000, help="ops per mix round")
    p.add_argument("--big-mix-count", type=int, default=1000, help="ops per big-mix round (1 MiB each)")
    p.add_argument("--rebuild-keys", type=int, default=30000, help="keys for rebuild/rebalance")
    p.add_argument("--baseline", help="versus, big-*, rebuild-1m: a folder with another build's mkv and volume")
    p.add_argument("--original", help="listing, big-mix, rebuild-1m: the original master's binary")
    p.add_argument("--list-keys", type=int, default=1000000, help="keys for listing")
    p.add_argument("--rebuild-1m-keys", type=int, default=1000000, help="keys for rebuild-1m")
    p.add_argument("--cold", action="store_true", help="rebuild-1m: drop the page cache before each run")
    args = p.parse_args()
    harness.check_tools()
    names = sorted(WORKLOADS) if args.workload == "all" else [args.workload]
    for name in names:
        with harness.Session() as tmp:
            print(f"== {name}: {WORKLOADS[name].__doc__}", flush=True)
            res = WORKLOADS[name](args, tmp)
            print(json.dumps(res, indent=2), flush=True)
            os.makedirs(harness.RESULTS, exist_ok=True)
            with open(os.path.join(harness.RESULTS, name + ".json"), "w") as f:
                json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
