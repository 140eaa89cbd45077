"""Big-value workloads for bench.py: what this store is for (values of 1 MiB
to 1 GiB), with the master's CPU per GiB beside the times.

    python3 perf/bench.py big-put [--baseline DIR]   # 1 GiB PUT, 3 replicas
    python3 perf/bench.py big-many [--baseline DIR]  # 16 concurrent 64 MiB PUTs vs dd
    python3 perf/bench.py big-mix --original BIN [--baseline DIR]  # 1 MiB mix vs the original

--baseline DIR (a folder with another build's mkv and volume) adds that
build as a side, so a change is measured against the code before it in the
same run. CPU is the master's user + system time (/proc/PID/stat) over the
side's run, divided by the GiB the clients PUT.
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


def cluster(tmp, name, bindir, threads):
    """A master over 3 volume-uring volumes (fsync on), 3 replicas."""
    vols = [harness.start_volume(os.path.join(tmp, f"{name}-v{i}"), tmp, 1, name=f"{name}-volume{i}", bindir=bindir)
            for i in range(3)]
    mkv = harness.start_mkv(tmp, vols, threads, ["-replicas", "3"], name=f"mkv-{name}", bindir=bindir)
    return mkv, vols


def emptied(tmp, name):
    for i in range(3):
        harness.empty_tree(os.path.join(tmp, f"{name}-v{i}"))
    harness.sync_disk()


class Cpu:
    """Samples of a process's CPU seconds per GiB, one per run."""

    def __init__(self):
        self.samples = {}

    def measure(self, side, pid, gib, run):
        before = harness.cpu_seconds(pid)
        value = run()
        self.samples.setdefault(side, []).append((harness.cpu_seconds(pid) - before) / gib)
        return value

    def report(self, res, label):
        for side, v in self.samples.items():
            res[f"{label} {side} (CPU s per GiB)"] = {"median": round(statistics.median(v), 3),
                                                     "samples": [round(x, 3) for x in v]}
        if "now" in self.samples and "baseline" in self.samples:
            ratio = statistics.median(self.samples["now"]) / statistics.median(self.samples["baseline"])
            res[f"{label} CPU now / baseline"] = round(ratio, 3)
            print(f"  => {label} CPU per GiB now / baseline = {ratio:.3f}", flush=True)


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
            masters[b] = cluster(tmp, b, d, args.threads)[0]

            def put(b=b):
                emptied(tmp, b)  # the files; the records of the last rounds stay
                cmd = ["curl", "-sf", "-o", "/dev/null", "-T", src, f"{masters[b].url}/big{next(rounds)}"]
                return cpu.measure(b, masters[b].proc.pid, 1, lambda: harness.timed(cmd))
            sides[f"1 GiB PUT, {b}"] = put
        res = harness.median_many(sides, args.rounds, "s")
        cpu.report(res, "master")
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
        cpu, sides, masters = Cpu(), {"dd conv=fdatasync, 3 GiB": dd}, {}
        for b, d in builds(args).items():
            masters[b] = cluster(tmp, b, d, args.threads)[0]

            def put(b=b):
                for i in range(16):  # the last round's keys
                    harness.http("DELETE", f"{masters[b].url}/fill/{i}")
                emptied(tmp, b)
                cmd = [thrasher, "--master", masters[b].hostport, "--workers", "16", "--count", "16",
                       "--fill", str(64 << 20)]
                return cpu.measure(b, masters[b].proc.pid, 1, lambda: harness.timed(cmd))
            sides[f"16 x 64 MiB PUTs, {b}"] = put
        res = harness.median_many(sides, args.rounds, "s")
        base = res["dd conv=fdatasync, 3 GiB"]["median"]
        for b in masters:
            res[f"{b} / dd"] = round(res[f"16 x 64 MiB PUTs, {b}"]["median"] / base, 3)
            res[f"mkv peak RSS {b} (KiB)"] = masters[b].peak_rss_kib()
        cpu.report(res, "master")
        return res

    @workload
    def big_mix(args, tmp):
        """16 workers each doing PUT + GET (following the 302) + DELETE of
        1 MiB values, 3 replicas on 3 volumes: mkv over durable volume-uring
        volumes against the original (--original) over nginx volumes, which
        never sync; ops/s and the master's CPU per GiB PUT."""
        if not args.original:
            raise SystemExit("big-mix needs --original BINARY (the original master, built with Go)")
        thrasher = os.path.join(harness.RELEASE, "thrasher")
        count = args.big_mix_count
        masters = {b: cluster(tmp, b, d, args.threads)[0] for b, d in builds(args).items()}
        ngx = [harness.start_nginx(os.path.join(tmp, f"n{i}"), tmp, 1, name=f"nginx{i}") for i in range(3)]
        masters["original"] = start_original(args.original, os.path.join(tmp, "original-index"),
                                                   ",".join(v.hostport for v in ngx), tmp)
        cpu = Cpu()

        def mix(b):
            cmd = [thrasher, "--master", masters[b].hostport, "--count", str(count), "--size", "1m"]

            def run():
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                return float(out.split("ops/s:")[1].split()[0])
            return lambda: cpu.measure(b, masters[b].proc.pid, count / 1024, run)
        names = {"original": "original + nginx", "now": "mkv + volume-uring (durable)",
                 "baseline": "baseline mkv + volume-uring (durable)"}
        res = harness.median_many({names[b]: mix(b) for b in masters}, args.rounds, "ops/s")
        orig = res[names["original"]]["median"]
        for b in masters:
            if b != "original":
                res[f"{names[b]} / original"] = round(res[names[b]]["median"] / orig, 3)
                print(f"  => {names[b]} / original = {res[f'{names[b]} / original']}", flush=True)
        cpu.report(res, "master")
        return res

