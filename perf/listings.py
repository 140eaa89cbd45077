"""Listing workloads for bench.py, over an index of --list-keys keys seeded
by perf/seed-index (Go): ?list and ListObjectsV2 pages against the original
master, and (in `versus`) against another build.

    python3 perf/bench.py listing --original BIN  # ?list / ListObjectsV2 vs the original
"""

import os
import re
import shutil
import subprocess

import harness
from harness import median_pair, wrk


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
    ngx = harness.nginx_404(tmp, args.threads)

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


def register(workload):
    workload(listing)
