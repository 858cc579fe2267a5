#!/usr/bin/env python3
"""Backup benchmark (issue 11): knsock against rsync in daemon mode, both through the same
latency and bandwidth emulating proxy (wan_proxy.py), interleaved in the same run.

Cases, at each round trip (default 20 and 100 ms) and 1 Gbit/s:
  1,000 x 4 KiB first send, the unchanged re-run, a re-run with 10 files changed;
  200 x 128 KiB and 50 x 4 MiB first sends;
  a 256 MiB file with 1% changed in scattered places (bytes on the wire counted).
knsock re-runs use --skip-unchanged (quick check, like rsync's default); rsync runs -rt.

Usage: bench/backup.py [--rtt 20,100] [--rounds 1] [--out /dev/shm] [--big-mib 256]
Needs rsync (installs it with apt-get when missing and allowed) and a release build.
Environment: KNSOCK_SHARED (default ../shared) for bench/wan_proxy.py.
"""
import argparse, os, random, re, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROXY = os.path.join(os.environ.get("KNSOCK_SHARED", os.path.join(ROOT, "..", "shared")),
                     "bench", "wan_proxy.py")


def need_rsync():
    if shutil.which("rsync"):
        return
    print("rsync is missing: installing it with apt-get (the benchmark compares against it)",
          file=sys.stderr)
    r = subprocess.run(["apt-get", "install", "-y", "rsync"], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True)
        r = subprocess.run(["apt-get", "install", "-y", "rsync"], capture_output=True)
    if not shutil.which("rsync"):
        sys.exit("bench/backup.py needs rsync: apt-get install rsync")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, what):
    import socket
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"{what} did not listen on {port}")


class Proxy:
    """One wan_proxy in front of `target`; stop() returns the bytes carried (up + down)."""

    def __init__(self, target, delay_ms, rate):
        self.p = subprocess.Popen([sys.executable, PROXY, "--listen", "0", "--target", str(target),
                                   "--delay-ms", str(delay_ms), "--rate-mbit", str(rate)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        self.port = int(line.strip().rsplit(":", 1)[1])

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        _, err = self.p.communicate(timeout=30)
        m = re.search(r"up (\d+) bytes, down (\d+) bytes", err)
        return int(m.group(1)) + int(m.group(2)) if m else -1


def run(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return dt


def write_files(d, n, size, seed):
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(seed)
    for i in range(n):
        with open(os.path.join(d, f"f{i:05}"), "wb") as f:
            f.write(rnd.randbytes(size))


def change_files(d, count, seed):
    rnd = random.Random(seed)
    names = sorted(os.listdir(d))
    for name in rnd.sample(names, count):
        p = os.path.join(d, name)
        size = os.path.getsize(p)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(size))
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def scatter_changes(path, seed, fraction=0.01, places=1000):
    """Changes `fraction` of the file in `places` regions spread over it (same size)."""
    size = os.path.getsize(path)
    rnd = random.Random(seed)
    each = int(size * fraction / places)
    with open(path, "r+b") as f:
        for i in range(places):
            at = i * (size // places) + rnd.randrange(0, size // places - each)
            f.seek(at)
            f.write(rnd.randbytes(each))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtt", default="20,100")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default="/dev/shm")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--big-mib", type=int, default=256)
    a = ap.parse_args()
    need_rsync()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(dir=a.out, prefix="knsock-backup.")
    try:
        bench(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(a, work):
    kn = os.path.join(work, "kn-sock")
    shutil.copy(os.path.join(ROOT, "target", "release", "kn-sock"), kn)
    src, kdst, rdst = (os.path.join(work, d) for d in ("src", "kdst", "rdst"))
    for d in (src, kdst, rdst):
        os.makedirs(d)
    write_files(os.path.join(src, "small"), 1000, 4096, 1)
    write_files(os.path.join(src, "mid"), 200, 128 << 10, 2)
    write_files(os.path.join(src, "large"), 50, 4 << 20, 3)
    os.makedirs(os.path.join(src, "big"))
    big = os.path.join(src, "big", "data.bin")
    with open(big, "wb") as f:
        rnd = random.Random(4)
        for _ in range(a.big_mib):
            f.write(rnd.randbytes(1 << 20))

    kport, rport = free_port(), free_port()
    server = subprocess.Popen([kn, "run-file-server", str(kport), kdst, "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write(f"use chroot = no\nuid = {os.getuid()}\ngid = {os.getgid()}\n"
                f"[m]\npath = {rdst}\nread only = no\n")
    rsyncd = subprocess.Popen(["rsync", "--daemon", "--no-detach", "--address=127.0.0.1",
                               f"--port={rport}", f"--config={conf}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(kport, server, "kn-sock server")
        wait_port(rport, rsyncd, "rsync daemon")
        rows = cases(a, kn, src, kdst, rdst, kport, rport, big)
    finally:
        server.terminate()
        rsyncd.terminate()
    print()
    print(f"| case | RTT | knsock s | rsync s | knsock/rsync | knsock bytes | rsync bytes |")
    print(f"|---|---|---|---|---|---|---|")
    for (case, rtt), v in rows.items():
        kt, rt = statistics.median(v["k"]), statistics.median(v["r"])
        print(f"| {case} | {rtt} ms | {kt:.3f} | {rt:.3f} | {kt / rt:.2f} | "
              f"{statistics.median(v['kb']):,} | {statistics.median(v['rb']):,} |")


def clear(d):
    for e in os.listdir(d):
        p = os.path.join(d, e)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


def cases(a, kn, src, kdst, rdst, kport, rport, big):
    rows = {}

    def one(case, rtt, sub, extra, round_):
        """Times knsock and rsync (order alternating by round) sending src/sub."""
        res = {}
        order = ["k", "r"] if round_ % 2 == 0 else ["r", "k"]
        for tool in order:
            px = Proxy(kport if tool == "k" else rport, rtt // 2, a.rate)
            if tool == "k":
                cmd = [kn, "send-file", "127.0.0.1", str(px.port), os.path.join(src, sub), "-r"]
                cmd += extra
            else:
                cmd = ["rsync", "-rt", os.path.join(src, sub),
                       f"rsync://127.0.0.1:{px.port}/m/"]
            dt = run(cmd)
            res[tool] = (dt, px.stop())
        r = rows.setdefault((case, rtt), {"k": [], "r": [], "kb": [], "rb": []})
        r["k"].append(res["k"][0]); r["r"].append(res["r"][0])
        r["kb"].append(res["k"][1]); r["rb"].append(res["r"][1])
        print(f"{case:>22} {rtt:>4} ms  knsock {res['k'][0]:7.3f} s {res['k'][1]:>12,} B"
              f"   rsync {res['r'][0]:7.3f} s {res['r'][1]:>12,} B", flush=True)

    skip = ["--skip-unchanged"]
    for rtt in [int(x) for x in a.rtt.split(",")]:
        for round_ in range(a.rounds):
            clear(kdst); clear(rdst)
            one("1000x4KiB first", rtt, "small", skip, round_)
            one("1000x4KiB unchanged", rtt, "small", skip, round_)
            change_files(os.path.join(src, "small"), 10, 100 + round_)
            one("1000x4KiB 10 changed", rtt, "small", skip, round_)
            one("200x128KiB first", rtt, "mid", skip, round_)
            one("50x4MiB first", rtt, "large", skip, round_)
            # The big file's first copy is set up without the proxy, then 1% changes.
            run([kn, "send-file", "127.0.0.1", str(kport), os.path.join(src, "big"), "-r"])
            run(["rsync", "-rt", os.path.join(src, "big"), f"rsync://127.0.0.1:{rport}/m/"])
            scatter_changes(big, 200 + round_ + rtt)
            one(f"{a.big_mib}MiB 1% changed", rtt, "big", skip, round_)
    return rows


if __name__ == "__main__":
    main()
