"""The shared index's workloads for bench.py: one master over LevelDB against
one and two masters over PostgreSQL (docs/postgres.md), same run, same
durable volumes.

    python3 perf/bench.py postgres [--list-keys N]

PostgreSQL is Debian's, started here in the session's folder on loopback,
durable as a production server is (fsync on, synchronous_commit on), so
the mix is durable on both sides. For each workload and side: the rate,
and the CPU each request cost the master(s) and the database (CPU seconds
of every process over the run, divided by the requests made).
"""

import os
import shutil
import statistics
import subprocess
import time

import harness
from listings import go_build, list_pages


def pg_bin():
    versions = sorted((d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()), key=int)
    if not versions:
        raise SystemExit("PostgreSQL is missing: apt-get install postgresql")
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """A server in `tmp`/pg on a free port; stopped by stop()."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        os.chmod(tmp, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = harness.free_port()
        b = pg_bin()
        subprocess.run(as_postgres([f"{b}/initdb", "-D", self.data, "-U", "mkv", "--auth=trust", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL)
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
                "-c max_connections=200 -c shared_buffers=512MB")
        subprocess.run(as_postgres([f"{b}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                                    "-o", opts, "-w", "start"]), check=True, stdout=subprocess.DEVNULL)
        self.bin = b

    def url(self, db):
        return f"postgres://mkv@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        return subprocess.run(["psql", "-X", "-A", "-t", "-d", self.url(db), "-c", sql],
                              check=True, capture_output=True, text=True).stdout.strip()

    def pids(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            main = int(f.readline())
        return [main] + harness.children(main)

    def cpu(self):
        """CPU seconds of every server process alive now (backends come and
        go with connections; the masters' pools keep theirs open)."""
        total = 0.0
        for p in self.pids():
            try:
                total += harness.cpu_seconds(p)
            except FileNotFoundError:
                pass
        return total

    def stop(self):
        subprocess.run(as_postgres([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"]),
                       check=False, stdout=subprocess.DEVNULL)


def start_masters(tmp, vols, threads, pg):
    """Side name -> list of masters: LevelDB, one over PostgreSQL, two over
    one PostgreSQL database."""
    for db in ("one", "two"):
        pg.psql(f"CREATE DATABASE {db}")
    lvl = harness.start_mkv(tmp, vols, threads, name="mkv-leveldb")
    one = start_pg_master(tmp, vols, threads, pg.url("one"), "mkv-pg")
    two = [start_pg_master(tmp, vols, threads, pg.url("two"), f"mkv-pg2-{i}") for i in (0, 1)]
    return {"LevelDB, 1 master": [lvl], "PostgreSQL, 1 master": [one], "PostgreSQL, 2 masters": two}


def start_pg_master(tmp, vols, threads, url, name):
    mkv = os.path.join(harness.RELEASE, "mkv")
    names = ",".join(v.hostport for v in vols)
    cmd = [mkv, "-port", "0", "-bind", "127.0.0.1", "-threads", str(threads), "-volumes", names,
           "-db", url, "server"]
    return harness.start_listening(cmd, tmp, name)


def measured(pg, masters, run):
    """Runs `run()` (returning (rate, requests)); the rate, and CPU
    microseconds per request of the masters and of the database."""
    before_m = sum(harness.cpu_seconds(m.proc.pid) for m in masters)
    before_db = pg.cpu()
    rate, requests = run()
    master_us = (sum(harness.cpu_seconds(m.proc.pid) for m in masters) - before_m) / requests * 1e6
    db_us = (pg.cpu() - before_db) / requests * 1e6
    return rate, master_us, db_us


def parallel_wrk(masters, path, duration, script=None, allow_errors=False, connections=100):
    """wrk against each master at once (the connections split between
    them); the summed rate and the requests made."""
    per = max(1, connections // len(masters))
    procs = []
    for m in masters:
        cmd = ["wrk", "-t1", f"-c{per}", f"-d{duration}s", "--timeout", "10s"]
        if script:
            cmd += ["-s", os.path.join(harness.PERF, script)]
        procs.append(subprocess.Popen(cmd + [m.url + path], stdout=subprocess.PIPE, text=True))
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if ("Non-2xx" in out and not allow_errors) or "Socket errors" in out:
            raise SystemExit(f"wrk saw errors:\n{out}")
        total += float(out.split("Requests/sec:")[1].split()[0])
    return total, total * duration


def parallel_mix(masters, count):
    """The thrasher's 16 workers split over the masters, `count` ops in all;
    ops/s, and requests made (a PUT, a GET, its redirect, a DELETE each; the
    redirect goes to a volume, so 3 of the 4 reach a master)."""
    thrasher = os.path.join(harness.RELEASE, "thrasher")
    workers, per = 16 // len(masters), count // len(masters)
    start = time.perf_counter()
    procs = [subprocess.Popen([thrasher, "--master", m.hostport, "--workers", str(workers), "--count", str(per)],
                              stdout=subprocess.PIPE, text=True) for m in masters]
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"thrasher failed:\n{out}")
    secs = time.perf_counter() - start
    done = per * len(masters)
    return done / secs, done * 3


def rounds(args, sides, pg, run, unit):
    """Each side once per round, alternating the order; medians, and ratios
    against the LevelDB side."""
    names = list(sides)
    samples = {n: [] for n in names}
    for r in range(args.rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            rate, m_us, db_us = measured(pg, sides[n], lambda n=n: run(sides[n]))
            samples[n].append((rate, m_us, db_us))
            print(f"  round {r + 1}: {n}: {rate:.1f} {unit}, {m_us:.0f} us master + {db_us:.0f} us database CPU per request",
                  flush=True)
    out = {}
    for n, s in samples.items():
        out[n] = {"median": statistics.median(x[0] for x in s), "unit": unit,
                  "samples": [x[0] for x in s],
                  "master CPU us/request": round(statistics.median(x[1] for x in s), 1),
                  "database CPU us/request": round(statistics.median(x[2] for x in s), 1)}
    base = out[names[0]]["median"]
    for n in names[1:]:
        out[f"{n} / LevelDB"] = round(out[n]["median"] / base, 3)
        print(f"  => {n} / LevelDB = {out[f'{n} / LevelDB']}", flush=True)
    return out


def postgres(args, tmp):
    """One master over LevelDB against one and two masters over PostgreSQL
    (same volumes, durable): missing-key GET and existing-key GET (wrk, 100
    connections split over the masters), the 16-worker PUT+GET+DELETE mix
    (thrasher), `?list` pages of 1,000 over --list-keys keys (wrk, 8
    connections), with CPU per request of masters and database; peak RSS."""
    pg = Postgres(tmp)
    try:
        vols = harness.three_volumes(tmp, 1)
        sides = start_masters(tmp, vols, args.threads, pg)
        for side in sides.values():
            for i in range(1000):
                assert harness.http("PUT", f"{side[0].url}/key/{i}", b"value") == 201
        res = {}
        res["missing-key GET"] = rounds(
            args, sides, pg, lambda ms: parallel_wrk(ms, "/missing", args.duration, allow_errors=True), "req/s")
        res["existing-key GET"] = rounds(
            args, sides, pg, lambda ms: parallel_wrk(ms, "/", args.duration, "existing_keys.lua"), "req/s")
        res["PUT+GET+DELETE mix (16 workers, durable)"] = rounds(
            args, sides, pg, lambda ms: parallel_mix(ms, args.mix_count), "ops/s")
        for n, ms in sides.items():
            res[f"peak RSS, {n} (KiB)"] = [m.peak_rss_kib() for m in ms]
            for m in ms:
                harness.stop(m)
        res.update(list_sides(args, tmp, vols, pg))
        return res
    finally:
        pg.stop()


def list_sides(args, tmp, vols, pg):
    """`?list` pages over --list-keys keys: LevelDB as perf/seed-index writes
    it, and the same records copied into PostgreSQL by `mkv migrate`."""
    seeder = os.path.join(tmp, "seed-index")
    go_build(os.path.join(harness.PERF, "seed-index"), seeder)
    names = ",".join(v.hostport for v in vols)
    seed = os.path.join(tmp, "list-index")
    subprocess.run([seeder, seed, str(args.list_keys), names], check=True)
    pg.psql("CREATE DATABASE listing")
    mkv = os.path.join(harness.RELEASE, "mkv")
    secs, rss = harness.timed_rss([mkv, "migrate", "-from", seed, "-to", pg.url("listing")])
    res = {f"mkv migrate of {args.list_keys} keys, LevelDB -> PostgreSQL": {
        "seconds": round(secs, 1), "peak RSS (KiB)": rss}}
    sides = {"LevelDB, 1 master": [harness.start_listening(
                 [mkv, "-port", "0", "-bind", "127.0.0.1", "-threads", str(args.threads), "-volumes", names,
                  "-db", seed, "server"], tmp, "list-leveldb")],
             "PostgreSQL, 1 master": [start_pg_master(tmp, vols, args.threads, pg.url("listing"), "list-pg")]}

    def pages(ms):
        rate = list_pages(ms[0], 8, args.duration)
        return rate, rate * args.duration
    res[f"?list pages of 1000, {args.list_keys} keys, 8 clients"] = rounds(args, sides, pg, pages, "pages/s")
    for n, ms in sides.items():
        res[f"peak RSS while listing, {n} (KiB)"] = ms[0].peak_rss_kib()
    return res


def register(workload):
    workload(postgres)
