"""Big-value workloads for bench.py: what this store is for (values of 1 MiB
to 1 GiB), with the master's CPU per GiB beside the times.

    python3 perf/bench.py big-put [--baseline DIR]   # 1 GiB PUT, 3 replicas
    python3 perf/bench.py big-many [--baseline DIR]  # 16 concurrent 64 MiB PUTs vs dd
    python3 perf/bench.py big-mix --original BIN [--baseline DIR]  # 1 MiB mix vs the original

--baseline DIR (a folder with another build's mkv and volume) adds that
build as a side, so a change is measured against the code before it in the
same run. CPU is the master's user + system time (/proc/PID/stat) over the
side's run, divided by the GiB the clients PUT; the volumes' likewise (the three
volume-uring volumes together).
"""

import os
import statistics
import subprocess

import harness

GIB = 1 << 30


def builds(args):
    """The builds to compare: this one, and --baseline if given."""
    out = {"now": harness.RELEASE}
    if args.baseline:
        out["baseline"] = args.baseline
    return out


def cluster(tmp, name, bindir, threads, volume_flags=()):
    """A master over 3 volume-uring volumes (fsync on), 3 replicas."""
    vols = harness.three_volumes(tmp, 1, volume_flags, prefix=f"{name}-", bindir=bindir)
    mkv = harness.start_mkv(tmp, vols, threads, ["-replicas", "3"], name=f"mkv-{name}", bindir=bindir)
    return mkv, vols


def emptied(tmp, name):
    for i in range(3):
        harness.empty_tree(os.path.join(tmp, f"{name}-v{i}"))
    harness.sync_disk()


class Cpu:
    """Samples of CPU seconds per GiB, one per run: the master's, and the
    three volumes' together."""

    def __init__(self):
        self.samples = {}
        self.pids = {}

    def watch(self, side, mkv, vols=()):
        """The master and volumes of a side (nginx: its workers too)."""
        pids = [p for v in vols for p in [v.proc.pid, *harness.children(v.proc.pid)]]
        self.pids[side] = {"master": [mkv.proc.pid], "volumes": pids}

    def measure(self, side, gib, run):
        procs = {k: v for k, v in self.pids[side].items() if v}
        before = {k: sum(harness.cpu_seconds(p) for p in pids) for k, pids in procs.items()}
        value = run()
        for k, pids in procs.items():
            used = sum(harness.cpu_seconds(p) for p in pids) - before[k]
            self.samples.setdefault((k, side), []).append(used / gib)
        return value

    def report(self, res):
        for (k, side), v in self.samples.items():
            res[f"{k} CPU {side} (s per GiB)"] = {"median": round(statistics.median(v), 3),
                                                 "samples": [round(x, 3) for x in v]}
        for k in ("master", "volumes"):
            now, base = self.samples.get((k, "now")), self.samples.get((k, "baseline"))
            if now and base:
                ratio = statistics.median(now) / statistics.median(base)
                res[f"{k} CPU now / baseline"] = round(ratio, 3)
                print(f"  => {k} CPU per GiB now / baseline = {ratio:.3f}", flush=True)


def register(workload, start_original):
    @workload
    def big_put(args, tmp):
        """PUT of a 1 GiB value through the master to 3 volume-uring replicas
        (curl -T), emptied and synced before each round: seconds and the
        master's CPU per GiB, for this build (and --baseline)."""
        src = os.path.join(tmp, "src")
        harness.make_big_file(src, GIB)
        harness.cat_to_null(src)
        cpu, sides, masters, rounds = Cpu(), {}, {}, iter(range(1 << 20))
        for b, d in builds(args).items():
            masters[b], vols = cluster(tmp, b, d, args.threads)
            cpu.watch(b, masters[b], vols)

            def put(b=b):
                emptied(tmp, b)  # the files; the records of the last rounds stay
                cmd = ["curl", "-sf", "-o", "/dev/null", "-T", src, f"{masters[b].url}/big{next(rounds)}"]
                return cpu.measure(b, 1, lambda: harness.timed(cmd))
            sides[f"1 GiB PUT, {b}"] = put
        res = harness.median_many(sides, args.rounds, "s")
        cpu.report(res)
        for b, m in masters.items():
            res[f"mkv peak RSS {b} (KiB)"] = m.peak_rss_kib()
        return res

    @workload
    def big_many(args, tmp):
        """16 concurrent PUTs of 64 MiB values through the master (3 replicas,
        fsync on), thrasher --fill 64m --workers 16, against dd writing the
        same 3 GiB with conv=fdatasync (3 files of 1 GiB, one after another);
        the master's CPU per GiB and peak RSS."""
        d_dd = os.path.join(tmp, "dd")
        os.makedirs(d_dd)
        src = os.path.join(tmp, "src")
        harness.make_big_file(src, GIB)
        harness.cat_to_null(src)
        thrasher = os.path.join(harness.RELEASE, "thrasher")

        def dd():
            harness.empty_folder(d_dd)
            harness.sync_disk()
            return harness.timed(["sh", "-c", " && ".join(
                f"dd if={src} of={d_dd}/f{i} bs=1M conv=fdatasync status=none" for i in range(3))])
        cpu, sides, masters, volumes = Cpu(), {"dd conv=fdatasync, 3 GiB": dd}, {}, {}
        for b, d in builds(args).items():
            masters[b], volumes[b] = cluster(tmp, b, d, args.threads)
            cpu.watch(b, masters[b], volumes[b])

            def put(b=b):
                for i in range(16):  # the last round's keys
                    harness.http("DELETE", f"{masters[b].url}/fill/{i}")
                emptied(tmp, b)
                cmd = [thrasher, "--master", masters[b].hostport, "--workers", "16", "--count", "16",
                       "--fill", str(64 << 20)]
                return cpu.measure(b, 1, lambda: harness.timed(cmd))
            sides[f"16 x 64 MiB PUTs, {b}"] = put
        res = harness.median_many(sides, args.rounds, "s")
        base = res["dd conv=fdatasync, 3 GiB"]["median"]
        for b in masters:
            res[f"{b} / dd"] = round(res[f"16 x 64 MiB PUTs, {b}"]["median"] / base, 3)
            res[f"mkv peak RSS {b} (KiB)"] = masters[b].peak_rss_kib()
            res[f"volume peak RSS {b} (KiB, the largest)"] = max(v.peak_rss_kib() for v in volumes[b])
        cpu.report(res)
        return res

    @workload
    def big_mix(args, tmp):
        """16 workers each doing PUT + GET (following the 302) + DELETE of
        1 MiB values, 3 replicas on 3 volumes: mkv over durable volume-uring
        volumes against the original (--original) over nginx volumes, which
        never sync (and so mostly never write: a value deleted before the
        kernel's writeback never reaches the disk); mkv over --no-fsync
        volumes for the same terms. ops/s and CPU per GiB PUT."""
        if not args.original:
            raise SystemExit("big-mix needs --original BINARY (the original master, built with Go)")
        thrasher = os.path.join(harness.RELEASE, "thrasher")
        count = args.big_mix_count
        cpu, masters = Cpu(), {}
        for b, d in builds(args).items():
            masters[b], vols = cluster(tmp, b, d, args.threads)
            cpu.watch(b, masters[b], vols)
        ngx = [harness.start_nginx(os.path.join(tmp, f"n{i}"), tmp, 1, name=f"nginx{i}") for i in range(3)]
        masters["original"] = start_original(args.original, os.path.join(tmp, "original-index"),
                                                   ",".join(v.hostport for v in ngx), tmp)
        cpu.watch("original", masters["original"], ngx)
        masters["no-fsync"], vols = cluster(tmp, "no-fsync", harness.RELEASE, args.threads, ["--no-fsync"])
        cpu.watch("no-fsync", masters["no-fsync"], vols)

        def mix(b):
            cmd = [thrasher, "--master", masters[b].hostport, "--count", str(count), "--size", "1m"]

            def run():
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                return float(out.split("ops/s:")[1].split()[0])
            return lambda: cpu.measure(b, count / 1024, run)
        names = {"original": "original + nginx", "now": "mkv + volume-uring (durable)",
                 "baseline": "baseline mkv + volume-uring (durable)",
                 "no-fsync": "mkv + volume-uring --no-fsync"}
        res = harness.median_many({names[b]: mix(b) for b in masters}, args.rounds, "ops/s")
        orig = res[names["original"]]["median"]
        for b in masters:
            if b != "original":
                res[f"{names[b]} / original"] = round(res[names[b]]["median"] / orig, 3)
                print(f"  => {names[b]} / original = {res[f'{names[b]} / original']}", flush=True)
        cpu.report(res)
        return res

