"""Rebuilds and rebalances for bench.py: `mkv rebuild` and `mkv rebalance`
of --rebuild-keys keys, and rebuild at scale, `mkv rebuild` against the
original's rebuild of the same volumes, side by side in one run.

    python3 perf/bench.py rebuild|rebalance [--rebuild-keys N]

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


def fill(server, count, size):
    thrasher = os.path.join(harness.RELEASE, "thrasher")
    subprocess.run([thrasher, "--master", server.hostport, "--count", str(count), "--fill", str(size)],
                   check=True, capture_output=True)


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


def register(workload, start_original):
    del start_original  # the rebuilds are commands, not servers
    workload(rebuild)
    workload(rebalance)

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
