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
    python3 perf/bench.py postgres          # 1 master on LevelDB vs 1 and 2 on PostgreSQL
    python3 perf/bench.py all

Options: --rounds N (default 3), --duration S (wrk seconds, default 10),
--threads N (server threads/workers, default: cores). Results are printed and
written to perf/results/<workload>.json.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import median_pair, wrk  # noqa: E402
import bigvalues  # noqa: E402
import rebuilds  # noqa: E402
import s3bench  # noqa: E402
import listings  # noqa: E402
import pgbench  # noqa: E402
from listings import listing_versus, start_original  # noqa: E402

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


@workload
def master_missing(args, tmp):
    """GET of missing keys through the master vs nginx `return 404;` (wrk -t2 -c100)."""
    ngx = harness.nginx_404(tmp, args.threads)
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
    ngx = harness.nginx_404(tmp, args.threads)
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
    ngx = harness.nginx_404(tmp, args.threads)
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


bigvalues.register(workload, start_original)
rebuilds.register(workload, start_original)
s3bench.register(workload)
listings.register(workload)
pgbench.register(workload)


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
