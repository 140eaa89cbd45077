"""Rebuild at scale for bench.py: `mkv rebuild` against the original's
rebuild of the same volumes, side by side in one run.

    python3 perf/bench.py rebuild-1m --original BIN [--rebuild-1m-keys N] [--cold] [--rounds 5]

The volumes are 3 volume-uring volumes holding N keys (1,000,000 by
default) of 100 B, one file each (`-replicas 1`), filled through our
master. Each round runs both rebuilds, in alternating order, each into a
fresh index. `--cold` empties the page cache before every rebuild (`echo 3
> /proc/sys/vm/drop_caches`, root only), so the walk reads every folder and
inode from the disk. Reported: seconds per run, keys/s, the ratio of each
round, the median ratio, the slowest run over the median, peak RSS.
"""

import os
import shutil
import subprocess

import harness


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def register(workload, start_original):
    del start_original  # the rebuilds are commands, not servers

    @workload
    def rebuild_1m(args, tmp):
        """mkv rebuild of --rebuild-1m-keys keys (one 100 B file each, 3
        volume-uring volumes) against the original's rebuild of the same
        volumes, alternating, --rounds rounds (5 for the target); --cold drops
        the page cache before every run."""
        if not args.original:
            raise SystemExit("rebuild-1m needs --original BINARY (the original master, built with Go)")
        if args.cold and os.geteuid() != 0:
            raise SystemExit("--cold drops the page cache: run as root")
        keys = args.rebuild_1m_keys
        vols = harness.three_volumes(tmp, 1, ["--no-fsync"], prefix="rb-")
        names = ",".join(v.hostport for v in vols)
        mkv = harness.start_mkv(tmp, vols, args.threads, ["-replicas", "1"], name="rb-fill")
        thrasher = os.path.join(harness.RELEASE, "thrasher")
        print(f"  filling {keys} keys ...", flush=True)
        subprocess.run([thrasher, "--master", mkv.hostport, "--count", str(keys), "--fill", "100"],
                       check=True, capture_output=True)
        mkv.proc.terminate()
        mkv.proc.wait(30)
        binaries = {"mkv": os.path.join(harness.RELEASE, "mkv"), "original": args.original}
        rss = {name: [] for name in binaries}

        def run(name):
            def side():
                db = os.path.join(tmp, f"rebuilt-{name}")
                shutil.rmtree(db, ignore_errors=True)
                if args.cold:
                    drop_caches()
                secs, peak = harness.timed_rss([binaries[name], "-volumes", names, "-replicas", "1",
                                                "-db", db, "rebuild"])
                rss[name].append(peak)
                shutil.rmtree(db, ignore_errors=True)
                return secs
            return side

        res = harness.median_many({name: run(name) for name in binaries}, args.rounds, "s")
        ratios = [o / m for m, o in zip(res["mkv"]["samples"], res["original"]["samples"])]
        for name in binaries:
            secs = res[name]
            secs["keys/s (median)"] = round(keys / secs["median"])
            secs["slowest / median"] = round(max(secs["samples"]) / secs["median"], 3)
            secs["peak RSS (KiB)"] = max(rss[name])
        res["ratio (original s / mkv s) per round"] = [round(r, 2) for r in ratios]
        res["ratio of medians"] = round(res["original"]["median"] / res["mkv"]["median"], 2)
        res["cold"] = bool(args.cold)
        print(f"  => original / mkv per round: {res['ratio (original s / mkv s) per round']}", flush=True)
        return res
