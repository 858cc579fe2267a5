#!/usr/bin/env python3
"""Restore benchmark (issue 21): `kn-sock fetch-file` against `rsync -a` pulling the same files
from an rsync daemon, both through the same latency and bandwidth emulating proxy
(wan_proxy.py), interleaved in the same run (A B, then B A).

Cases, at each round trip (default 100 ms) and 1 Gbit/s: 1,000 x 4 KiB fetched into an empty
directory, and the unchanged re-run (knsock --skip-unchanged, the quick check; rsync -a, whose
default is the same check). Both servers serve one directory, plaintext and anonymous (the
rsync daemon's module is read only; kn-sock run-file-server --allow-fetch
--allow-anonymous-fetch), so neither pays for TLS.

Usage: bench/fetch.py [--rtt 100] [--rounds 5] [--out /dev/shm] [--files 1000] [--size 4096]
Needs rsync and a release build (made here with cargo).
Environment: KNSOCK_SHARED (default ../shared) for bench/wan_proxy.py.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile

from backup import (Proxy, clear, free_port, need_rsync, rsync_daemon, run, wait_port,
                    write_files)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtt", default="100")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="/dev/shm")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    need_rsync()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(dir=a.out, prefix="knsock-fetch.")
    try:
        bench(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(a, work):
    kn = os.path.join(work, "kn-sock")
    shutil.copy(os.path.join(ROOT, "target", "release", "kn-sock"), kn)
    served, kdst, rdst = (os.path.join(work, d) for d in ("served", "kdst", "rdst"))
    for d in (served, kdst, rdst):
        os.makedirs(d)
    write_files(os.path.join(served, "small"), a.files, a.size, 1)
    kport, rport = free_port(), free_port()
    server = subprocess.Popen([kn, "run-file-server", str(kport), served, "--host", "127.0.0.1",
                               "--allow-fetch", "--allow-anonymous-fetch"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rsyncd = rsync_daemon(work, served, rport, read_only=True)
    rows = {}
    try:
        wait_port(kport, server, "kn-sock server")
        wait_port(rport, rsyncd, "rsync daemon")
        for rtt in [int(x) for x in a.rtt.split(",")]:
            for round_ in range(a.rounds):
                clear(kdst)
                clear(rdst)
                for case, skip in ((f"{a.files}x{a.size}B fetch", []),
                                   (f"{a.files}x{a.size}B unchanged", ["--skip-unchanged"])):
                    res = {}
                    for tool in (["k", "r"] if round_ % 2 == 0 else ["r", "k"]):
                        px = Proxy(kport if tool == "k" else rport, rtt // 2, a.rate)
                        if tool == "k":
                            cmd = [kn, "fetch-file", "127.0.0.1", str(px.port), "small", "-r",
                                   "--to", kdst] + skip
                        else:
                            cmd = ["rsync", "-a", f"rsync://127.0.0.1:{px.port}/m/small", rdst]
                        res[tool] = (run(cmd), px.stop())
                    check_same(os.path.join(served, "small"), kdst, rdst)
                    r = rows.setdefault((case, rtt), {"k": [], "r": [], "kb": [], "rb": []})
                    for t in "kr":
                        r[t].append(res[t][0])
                        r[t + "b"].append(res[t][1])
                    print(f"{case:>24} {rtt:>4} ms  knsock {res['k'][0]:7.3f} s "
                          f"{res['k'][1]:>10,} B   rsync {res['r'][0]:7.3f} s "
                          f"{res['r'][1]:>10,} B", flush=True)
    finally:
        server.terminate()
        rsyncd.terminate()
    print()
    print("| case | RTT | knsock s | rsync s | knsock/rsync | knsock bytes | rsync bytes |")
    print("|---|---|---|---|---|---|---|")
    for (case, rtt), v in rows.items():
        kt, rt = statistics.median(v["k"]), statistics.median(v["r"])
        print(f"| {case} | {rtt} ms | {kt:.3f} | {rt:.3f} | {kt / rt:.2f} | "
              f"{statistics.median(v['kb']):,} | {statistics.median(v['rb']):,} |")


def check_same(src, kdst, rdst):
    """Both tools restored every file with its bytes and modification time."""
    for name in os.listdir(src):
        s = os.stat(os.path.join(src, name))
        for d in (kdst, rdst):
            p = os.path.join(d, "small", name)
            st = os.stat(p)
            if st.st_size != s.st_size or st.st_mtime_ns // 10**9 != s.st_mtime_ns // 10**9:
                sys.exit(f"{p} differs from the served file")
    with open(os.path.join(src, name), "rb") as a, open(os.path.join(kdst, "small", name), "rb") as b:
        if a.read() != b.read():
            sys.exit(f"{name}: knsock's copy differs")


if __name__ == "__main__":
    main()
