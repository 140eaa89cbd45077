"""Rebuild at scale for bench.py: `mkv rebuild` against the original's
rebuild of the same volumes, side by side in one run.

    python3 perf/bench.py rebuild-1m --original BIN [--rebuild-1m-keys N] [--cold] [--rounds 5]
    python3 perf/bench.py rebuild-1m --baseline DIR [--cold]   # against another build

With `--baseline DIR` (a folder with another build's mkv and volume) that
build is a side too: before each side's run the three volumes restart, on
the same folders and ports, from the side's own `volume` (the walk that
lists a volume is the volume's). The original is a side when `--original`
is given; at least one of the two is needed.

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


def start_volumes(tmp, ports, bindir):
    """The three volume-uring volumes (--no-fsync) on fixed ports: the keys'
    places depend on the volumes' names."""
    return [harness.start_volume(os.path.join(tmp, f"rb-v{i}"), tmp, 1, ["--no-fsync"], name=f"rb-volume{i}",
                                 bindir=bindir, port=port)
            for i, port in enumerate(ports)]


def register(workload, start_original):
    del start_original  # the rebuilds are commands, not servers

    @workload
    def rebuild_1m(args, tmp):
        """mkv rebuild of --rebuild-1m-keys keys (one 100 B file each, 3
        volume-uring volumes) against the original's rebuild of the same
        volumes (--original) and/or another build's (--baseline), alternating,
        --rounds rounds (5 for the target); --cold drops the page cache before
        every run."""
        if not args.original and not args.baseline:
            raise SystemExit("rebuild-1m needs --original BINARY (the original master, built with Go) "
                             "and/or --baseline DIR")
        if args.cold and os.geteuid() != 0:
            raise SystemExit("--cold drops the page cache: run as root")
        keys = args.rebuild_1m_keys
        ports = [harness.free_port() for _ in range(3)]
        names = ",".join(f"127.0.0.1:{p}" for p in ports)
        vols = start_volumes(tmp, ports, harness.RELEASE)
        mkv = harness.start_mkv(tmp, vols, args.threads, ["-replicas", "1"], name="rb-fill")
        thrasher = os.path.join(harness.RELEASE, "thrasher")
        print(f"  filling {keys} keys ...", flush=True)
        subprocess.run([thrasher, "--master", mkv.hostport, "--count", str(keys), "--fill", "100"],
                       check=True, capture_output=True)
        harness.stop(mkv)
        # side: (master binary, folder of the volume binary it runs against)
        sides = {"mkv": (os.path.join(harness.RELEASE, "mkv"), harness.RELEASE)}
        if args.baseline:
            sides["baseline mkv"] = (os.path.join(args.baseline, "mkv"), args.baseline)
        if args.original:
            sides["original"] = (args.original, harness.RELEASE)
        rss = {name: [] for name in sides}
        running = {"bindir": harness.RELEASE, "vols": vols}

        def run(name):
            binary, bindir = sides[name]

            def side():
                if bindir != running["bindir"]:
                    for v in running["vols"]:
                        harness.stop(v)
                    running["vols"], running["bindir"] = start_volumes(tmp, ports, bindir), bindir
                db = os.path.join(tmp, "rebuilt")
                shutil.rmtree(db, ignore_errors=True)
                if args.cold:
                    drop_caches()
                secs, peak = harness.timed_rss([binary, "-volumes", names, "-replicas", "1", "-db", db, "rebuild"])
                rss[name].append(peak)
                shutil.rmtree(db, ignore_errors=True)
                return secs
            return side

        res = harness.median_many({name: run(name) for name in sides}, args.rounds, "s")
        for name in sides:
            secs = res[name]
            secs["keys/s (median)"] = round(keys / secs["median"])
            secs["slowest / median"] = round(max(secs["samples"]) / secs["median"], 3)
            secs["peak RSS (KiB)"] = max(rss[name])
        for other in ("original", "baseline mkv"):
            if other in sides:
                ratios = [round(o / m, 2) for m, o in zip(res["mkv"]["samples"], res[other]["samples"])]
                res[f"{other} s / mkv s, per round"] = ratios
                res[f"{other} / mkv, medians"] = round(res[other]["median"] / res["mkv"]["median"], 2)
                print(f"  => {other} / mkv per round: {ratios}", flush=True)
        res["cold"] = bool(args.cold)
        return res
