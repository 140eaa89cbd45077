"""Plumbing for bench.py: starting servers on loopback, running wrk and curl,
alternating sides and taking medians. Standard library only."""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.path.join(ROOT, "perf")
RESULTS = os.path.join(PERF, "results")
RELEASE = os.path.join(ROOT, "target", "release")

_procs = []


class Session:
    """A temporary folder; every process started inside is killed on exit."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="mkv-perf-", dir=os.environ.get("MKV_PERF_DIR"))
        return self.dir

    def __exit__(self, *exc):
        while _procs:
            p = _procs.pop()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, name, proc, hostport):
        self.name, self.proc, self.hostport = name, proc, hostport
        self.url = "http://" + hostport

    def peak_rss_kib(self, pid=None):
        """VmHWM of the server (nginx: the sum over its workers)."""
        pids = [pid or self.proc.pid]
        total = 0
        for p in pids + children(pids[0]):
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
        return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def check_tools():
    for tool in ("wrk", "curl", "nginx"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            raise SystemExit(f"{tool} is missing (apt-get install -y wrk curl nginx)")
    if not os.path.exists(os.path.join(RELEASE, "volume")):
        raise SystemExit("target/release/volume is missing: run cargo build --release")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, name):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not start")


def spawn(cmd, log, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True, **kw)
    _procs.append(p)
    return p


def stop(server):
    server.proc.terminate()
    server.proc.wait(30)


def start_listening(cmd, tmp, name, env=None):
    """Starts one of our binaries and reads its `listening on ADDR` line."""
    p = spawn(cmd, os.path.join(tmp, name + ".log"), env=env)
    line = p.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit(f"{name} did not start: {line!r} (see {tmp}/{name}.log)")
    return Server(name, p, line.split()[2])


def start_volume(data, tmp, threads, extra=(), name="volume-uring", bindir=RELEASE, port=0):
    cmd = [os.path.join(bindir, "volume"), "--port", str(port), "--bind", "127.0.0.1",
           "--threads", str(threads), *extra, data]
    return start_listening(cmd, tmp, name)


def three_volumes(tmp, threads, extra=(), prefix="", bindir=RELEASE):
    """Three volume-uring volumes in `tmp`/{prefix}v0..v2."""
    return [start_volume(os.path.join(tmp, f"{prefix}v{i}"), tmp, threads, extra, name=f"{prefix}volume{i}",
                         bindir=bindir)
            for i in range(3)]


def start_nginx(data, tmp, workers, name="nginx", template=None):
    """nginx as a volume (the testkit template), or with another template."""
    prefix = os.path.join(tmp, name)
    os.makedirs(prefix, exist_ok=True)
    os.makedirs(data, exist_ok=True)
    port = free_port()
    with open(template or os.path.join(ROOT, "testkit", "nginx-volume.conf")) as f:
        conf = f.read()
    conf = (conf.replace("{workers}", str(workers)).replace("{prefix}", prefix)
            .replace("{root}", os.path.abspath(data)).replace("{port}", str(port))
            .replace("{user}", "user root;" if os.geteuid() == 0 else ""))
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    p = spawn([nginx, "-c", path, "-p", prefix], os.path.join(prefix, "stderr.log"))
    wait_port(port, p, name)
    return Server(name, p, f"127.0.0.1:{port}")


def start_mkv(tmp, volumes, threads, extra=(), name="mkv", bindir=RELEASE):
    """The master over `volumes` (Servers), with its index in `tmp`."""
    mkv = os.path.join(bindir, "mkv")
    if not os.path.exists(mkv):
        raise SystemExit("target/release/mkv is missing: run cargo build --release")
    names = ",".join(v.hostport for v in volumes)
    cmd = [mkv, "-port", "0", "-bind", "127.0.0.1", "-threads", str(threads), "-volumes", names,
           "-db", os.path.join(tmp, name + "-index"), *extra, "server"]
    return start_listening(cmd, tmp, name)


def http(method, url, body=b""):
    """One request with urllib, no redirects followed; returns the status."""
    import urllib.request
    import urllib.error

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method)
    try:
        return opener.open(req).status
    except urllib.error.HTTPError as e:
        return e.code


def make_files(data, count, size):
    """`count` files of `size` random bytes at /NN/MM/fI (I = NN + 100*MM)."""
    for i in range(count):
        d = os.path.join(data, f"{i % 100:02d}", f"{i // 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(size))


def make_big_file(path, size):
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(chunk[:-8] + i.to_bytes(8, "little"))


def cat_to_null(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def empty_folder(folder):
    """Removes the files in `folder` (not nginx's body_temp folder)."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)


def empty_tree(folder):
    """Removes everything under `folder`, keeping the folder."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def sync_disk():
    subprocess.run(["sync"], check=True)


def timed(cmd, env=None):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_rss(cmd):
    """Runs `cmd`; returns (seconds, peak RSS in KiB) from wait4."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stderr.read().decode()}")
    return secs, usage.ru_maxrss


def wrk(url, duration, script=None, connections=100, threads=2, allow_errors=False):
    """Requests per second from wrk. Non-2xx/3xx answers fail the run unless
    `allow_errors` (a benchmark of 404s, say)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", os.path.join(PERF, script)]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"wrk output not understood:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if (errors and not allow_errors) or socket_errors:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    return float(m.group(1))


def curl_get_bytes_per_s(url):
    out = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{speed_download}", url],
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def median_many(sides, rounds, unit):
    """Runs each side once per round, in turn, and reports the medians; the
    order within a round alternates so neither side always goes first."""
    samples = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            v = sides[name]()
            samples[name].append(v)
            print(f"  round {r + 1}: {name}: {v:.3f} {unit}", flush=True)
    out = {name: {"median": statistics.median(v), "samples": v, "unit": unit} for name, v in samples.items()}
    return out


def median_pair(sides, rounds, unit):
    """Two sides, A then B; adds `ratio` = B / A of the medians."""
    out = median_many(sides, rounds, unit)
    a, b = list(sides)
    out["ratio"] = round(out[b]["median"] / out[a]["median"], 3)
    print(f"  => {b} / {a} = {out['ratio']}", flush=True)
    return out


def cpu_seconds(pid):
    """User + system CPU time a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nginx_404(tmp, threads):
    return start_nginx(tmp, tmp, threads, name="nginx-404",
                               template=os.path.join(PERF, "nginx-return404.conf"))
