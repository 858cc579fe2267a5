#!/usr/bin/env python3
"""Backup and round-trip benchmark (issues 11 and 22): knsock against rsync in daemon mode, both
through the same latency and bandwidth emulating proxy (wan_proxy.py), interleaved in the same
run (the order of the two tools alternates by round). Every client's connect() to the proxy
costs one round trip (the LD_PRELOAD shim connect_delay.c, built with cc into the run's
temporary directory), as a TCP handshake over a real link would, so seconds / RTT counts the
round trips a tool needs, connects included; the connects column counts the connections made.

Cases (--cases picks them by name or group; default: all), at each round trip (default 20 and
100 ms) and 1 Gbit/s:
  group rtt (issue 22: round trips for small work):
    4KiB             one 4 KiB file, plaintext (rsync: daemon)
    4KiB-tls         one 4 KiB file over TLS 1.3 with a token (knsock only)
    small            1,000 x 4 KiB first send, plaintext
    small-unchanged  its unchanged re-run, plaintext (needs small before it)
    small-tls        1,000 x 4 KiB first send over TLS with a token (knsock only)
    small-tls-unchanged  its unchanged re-run over TLS (needs small-tls before it)
  group backup (issue 11):
    small, small-unchanged, small-changed (a re-run with 10 files changed),
    mid (200 x 128 KiB first send), large (50 x 4 MiB first send),
    big (a 256 MiB file with 1% changed in scattered places; bytes on the wire counted).
knsock re-runs use --skip-unchanged (quick check, like rsync's default); rsync runs -rt. A first
send starts from an empty destination; a re-run case includes the first send it needs, untimed,
when that case is not chosen. The TLS receiver has a self-signed identity (the sender pins it)
and a tokens file; rsync has no TLS case (its rows say -).

Usage: bench/backup.py [--cases rtt|backup|all|NAME,...] [--rtt 20,100] [--rounds 1]
                       [--out /dev/shm] [--big-mib 256] [--kn-sock PATH]
  bench/backup.py --cases rtt --rtt 100            the issue 22 table at 100 ms
  bench/backup.py --cases 4KiB --rtt 20 --rounds 3 one case, fast
  bench/backup.py --cases rtt --kn-sock "$(scripts/prev-knsock.sh)"   the previous release
It prints a line per measurement, then a table: seconds, seconds / RTT (round trips, connect
included) and connects per tool, bytes on the wire (up + down). Without --kn-sock it builds the
release (cargo build --release; CARGO_TARGET_DIR is honoured) and runs a copy of kn-sock.
Needs rsync (installs it with apt-get when missing and allowed) and cc.
Environment: KNSOCK_SHARED (default ../shared) for bench/wan_proxy.py and bench/connect_delay.c.
"""
import argparse, os, random, re, shutil, signal, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.environ.get("KNSOCK_SHARED", os.path.join(ROOT, "..", "shared")), "bench")
PROXY = os.path.join(SHARED, "wan_proxy.py")
SHIM_SRC = os.path.join(SHARED, "connect_delay.c")

RTT_CASES = ["4KiB", "4KiB-tls", "small", "small-unchanged", "small-tls", "small-tls-unchanged"]
BACKUP_CASES = ["small", "small-unchanged", "small-changed", "mid", "large", "big"]
ALL_CASES = list(dict.fromkeys(RTT_CASES + BACKUP_CASES))
GROUPS = {"rtt": RTT_CASES, "backup": BACKUP_CASES, "all": ALL_CASES}
TLS_CASES = {"4KiB-tls", "small-tls", "small-tls-unchanged"}


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


def rsync_daemon(work, path, port, read_only):
    """An rsync daemon on 127.0.0.1:port serving `path` as module `m`."""
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write(f"use chroot = no\nuid = {os.getuid()}\ngid = {os.getgid()}\n"
                f"[m]\npath = {path}\nread only = {'yes' if read_only else 'no'}\n")
    return subprocess.Popen(["rsync", "--daemon", "--no-detach", "--address=127.0.0.1",
                             f"--port={port}", f"--config={conf}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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


def run(cmd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
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


def parse_cases(spec):
    chosen = []
    for word in spec.split(","):
        word = word.strip()
        names = GROUPS.get(word, [word] if word in ALL_CASES else None)
        if names is None:
            sys.exit(f"unknown case {word!r}: the cases are {', '.join(ALL_CASES)}; "
                     f"the groups {', '.join(GROUPS)}")
        chosen += [n for n in names if n not in chosen]
    return [c for c in ALL_CASES if c in chosen]  # always in the order that builds on itself


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="all", help="names or groups (rtt, backup, all), comma separated")
    ap.add_argument("--rtt", default="20,100", help="round trips in ms, comma separated")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default="/dev/shm")
    ap.add_argument("--rate", type=int, default=1000, help="Mbit/s")
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--kn-sock", help="this kn-sock binary instead of the release build")
    a = ap.parse_args()
    a.case_list = parse_cases(a.cases)
    need_rsync()
    if a.kn_sock:
        built = a.kn_sock
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        built = os.path.join(target, "release", "kn-sock")
    work = tempfile.mkdtemp(dir=a.out, prefix="knsock-backup.")
    try:
        bench(a, work, built)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_shim(work):
    so = os.path.join(work, "connect_delay.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", so, SHIM_SRC, "-ldl"], check=True)
    return so


class Servers:
    """The receivers: knsock plaintext, knsock TLS with a token, rsync daemon."""

    def __init__(self, kn, work):
        self.procs = []
        self.kdst, self.ktdst, self.rdst = (os.path.join(work, d) for d in ("kdst", "ktdst", "rdst"))
        for d in (self.kdst, self.ktdst, self.rdst):
            os.makedirs(d)
        self.kport = self.start([kn, "run-file-server", "0", self.kdst, "--host", "127.0.0.1"])[0]
        secret = "bench-secret"
        line = subprocess.run([kn, "hash-token", "bench"], input=secret + "\n", text=True,
                              capture_output=True, check=True).stdout
        tokens = os.path.join(work, "tokens")
        with open(os.open(tokens, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(line)
        self.token = f"bench:{secret}"
        self.ktport, p = self.start([kn, "run-file-server", "0", self.ktdst, "--host", "127.0.0.1",
                                     "--tls-self-signed", os.path.join(work, "identity"),
                                     "--tokens", tokens])
        second = p.stdout.readline().strip()
        if not second.startswith("tls pin "):
            sys.exit(f"TLS server said {second!r}, not its pin")
        self.pin = second.split()[2]
        for p in self.procs[:2]:  # the servers' lines of received files: read, never stuck on a full pipe
            threading.Thread(target=p.stdout.read, daemon=True).start()
        self.rport = free_port()
        rsyncd = rsync_daemon(work, self.rdst, self.rport, read_only=False)
        self.procs.append(rsyncd)
        wait_port(self.rport, rsyncd, "rsync daemon")

    def start(self, cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        first = p.stdout.readline().strip()
        if not first.startswith("listening on 127.0.0.1:"):
            sys.exit(f"{' '.join(cmd)} said {first!r}")
        return int(first.rsplit(":", 1)[1]), p

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


def bench(a, work, built):
    kn = os.path.join(work, "kn-sock")
    shutil.copy(built, kn)  # a copy: rebuilding during a run changes nothing
    shim = build_shim(work)
    src = os.path.join(work, "src")
    names = set(a.case_list)
    write_files(os.path.join(src, "one"), 1, 4096, 5)
    write_files(os.path.join(src, "small"), 1000, 4096, 1)
    if "mid" in names:
        write_files(os.path.join(src, "mid"), 200, 128 << 10, 2)
    if "large" in names:
        write_files(os.path.join(src, "large"), 50, 4 << 20, 3)
    big = os.path.join(src, "big", "data.bin")
    if "big" in names:
        os.makedirs(os.path.join(src, "big"))
        with open(big, "wb") as f:
            rnd = random.Random(4)
            for _ in range(a.big_mib):
                f.write(rnd.randbytes(1 << 20))
    srv = Servers(kn, work)
    try:
        rows = cases(a, kn, shim, src, srv, big, work)
    finally:
        srv.stop()
    print()
    print("| case | RTT | knsock s | knsock RTTs | rsync s | rsync RTTs | knsock connects "
          "| rsync connects | knsock bytes | rsync bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    # Medians; counts take the lower middle (a whole number) when the rounds are even.
    fmt = lambda v, f: "-" if not v else format(
        (statistics.median_low if f in ("d", ",") else statistics.median)(v), f)
    for (case, rtt), v in rows.items():
        kt, rt = v["k"], v["r"]
        print(f"| {case} | {rtt} ms | {fmt(kt, '.3f')} | {fmt([x * 1000 / rtt for x in kt], '.1f')} "
              f"| {fmt(rt, '.3f')} | {fmt([x * 1000 / rtt for x in rt], '.1f')} "
              f"| {fmt(v['kc'], 'd')} | {fmt(v['rc'], 'd')} | {fmt(v['kb'], ',')} | {fmt(v['rb'], ',')} |")


def clear(d):
    for e in os.listdir(d):
        p = os.path.join(d, e)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


def remove(p):
    if os.path.exists(p):
        os.remove(p)


def cases(a, kn, shim, src, srv, big, work):
    rows = {}
    log = os.path.join(work, "connects.log")

    def timed(tool, rtt, sub, extra, tls):
        """Runs one tool sending src/sub through a fresh proxy; (seconds, bytes, connects)."""
        target = srv.rport if tool == "r" else srv.ktport if tls else srv.kport
        px = Proxy(target, rtt / 2, a.rate)
        if os.path.exists(log):
            os.remove(log)
        env = dict(os.environ, LD_PRELOAD=shim, WAN_CONNECT_PORT=str(px.port),
                   WAN_CONNECT_DELAY_US=str(rtt * 1000), WAN_CONNECT_LOG=log)
        env.pop("KNSOCK_TOKEN", None)
        if tool == "k":
            cmd = [kn, "send-file", "127.0.0.1", str(px.port), os.path.join(src, sub), "-r",
                   "--no-progress"] + extra
            if tls:
                cmd += ["--pin", srv.pin]
                env["KNSOCK_TOKEN"] = srv.token
        else:
            cmd = ["rsync", "-rt", os.path.join(src, sub), f"rsync://127.0.0.1:{px.port}/m/"]
        try:
            dt = run(cmd, env)
        finally:
            carried = px.stop()
        with open(log) as f:
            connects = len(f.read().split())
        return dt, carried, connects

    def one(case, rtt, sub, extra, round_, tls=False):
        """Times knsock and rsync (rsync not over TLS; order alternating by round)."""
        res = {}
        tools = ["k"] if tls else (["k", "r"] if round_ % 2 == 0 else ["r", "k"])
        for tool in tools:
            res[tool] = timed(tool, rtt, sub, extra, tls)
        r = rows.setdefault((case, rtt), {x: [] for x in ("k", "r", "kb", "rb", "kc", "rc")})
        for tool, (dt, carried, connects) in res.items():
            r[tool].append(dt)
            r[tool + "b"].append(carried)
            r[tool + "c"].append(connects)
        line = f"{case:>22} {rtt:>4} ms"
        for tool, name in (("k", "knsock"), ("r", "rsync")):
            if tool in res:
                dt, carried, connects = res[tool]
                line += (f"   {name} {dt:7.3f} s = {dt * 1000 / rtt:5.1f} RTT, {connects} connects,"
                         f" {carried:>12,} B")
        print(line, flush=True)

    def setup(sub, tls=False):
        """An untimed first copy of src/sub straight to the receivers (no proxy)."""
        port = srv.ktport if tls else srv.kport
        cmd = [kn, "send-file", "127.0.0.1", str(port), os.path.join(src, sub), "-r",
               "--no-progress"]
        env = dict(os.environ)
        if tls:
            cmd += ["--pin", srv.pin]
            env["KNSOCK_TOKEN"] = srv.token
        run(cmd, env)
        if not tls:
            run(["rsync", "-rt", os.path.join(src, sub), f"rsync://127.0.0.1:{srv.rport}/m/"])

    skip = ["--skip-unchanged"]
    chosen = a.case_list
    for rtt in [int(x) for x in a.rtt.split(",")]:
        for round_ in range(a.rounds):
            for d in (srv.kdst, srv.ktdst, srv.rdst):
                clear(d)
            for case in chosen:
                if case == "4KiB":
                    for d in (srv.kdst, srv.rdst):
                        remove(os.path.join(d, "f00000"))
                    one(case, rtt, "one/f00000", [], round_)
                elif case == "4KiB-tls":
                    remove(os.path.join(srv.ktdst, "f00000"))
                    one(case, rtt, "one/f00000", [], round_, tls=True)
                elif case == "small":
                    one("1000x4KiB first", rtt, "small", skip, round_)
                elif case == "small-unchanged":
                    if "small" not in chosen:
                        setup("small")
                    one("1000x4KiB unchanged", rtt, "small", skip, round_)
                elif case == "small-tls":
                    one("1000x4KiB first TLS", rtt, "small", skip, round_, tls=True)
                elif case == "small-tls-unchanged":
                    if "small-tls" not in chosen:
                        setup("small", tls=True)
                    one("1000x4KiB unchanged TLS", rtt, "small", skip, round_, tls=True)
                elif case == "small-changed":
                    if "small" not in chosen and "small-unchanged" not in chosen:
                        setup("small")
                    change_files(os.path.join(src, "small"), 10, 100 + round_)
                    one("1000x4KiB 10 changed", rtt, "small", skip, round_)
                elif case == "mid":
                    one("200x128KiB first", rtt, "mid", skip, round_)
                elif case == "large":
                    one("50x4MiB first", rtt, "large", skip, round_)
                elif case == "big":
                    # The big file's first copy is set up without the proxy, then 1% changes.
                    setup("big")
                    scatter_changes(big, 200 + round_ + rtt)
                    one(f"{a.big_mib}MiB 1% changed", rtt, "big", skip, round_)
    return rows


if __name__ == "__main__":
    main()
