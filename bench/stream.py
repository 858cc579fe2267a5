#!/usr/bin/env python3
"""A 1 GiB stream through the CLI against the same file sent from disk (issue 20), to one
`kn-sock run-file-server` in the same run, interleaved round by round. Four ways in:

  file    kn-sock send-file … big.bin                          (the baseline)
  pipe    cat big.bin | kn-sock send-file … - --remote-name …  (a real pipe, size unknown)
  splice  splice_cat big.bin | kn-sock send-file … - …         (a real pipe from a producer that
                                                                copies nothing: bench/splice_cat.c)
  stdin   kn-sock send-file … - … < big.bin                    (the unknown-size path, no pipe)

Each run's wall time (the sending command, until the receiver's OK) gives MiB/s. CPU seconds per
GiB are counted for the sender, the producer (`cat`, `splice_cat`) and the receiver (its
threads' run time, /proc/PID/task/*/schedstat), so the report says where the CPU went as well
as how fast it went: on a machine whose cores the sender and the receiver already fill, a
producer's own CPU is taken from them. Prints every run, the medians, and ratios to the file.

Usage: bench/stream.py [--rounds 5] [--out /dev/shm]   (bench/stream.sh ROUNDS OUTDIR runs it)
Needs cc for splice_cat (the splice case is left out without it). Loopback only; the file and
the receiver's directory live in OUT.
"""
import argparse, glob, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="/dev/shm")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(dir=a.out, prefix="knsock-stream.")
    try:
        bench(a.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(rounds, work):
    kn = os.path.join(work, "kn-sock")
    shutil.copy(os.path.join(ROOT, "target", "release", "kn-sock"), kn)
    big, recv = os.path.join(work, "big.bin"), os.path.join(work, "recv")
    os.makedirs(recv)
    with open(big, "wb") as f:
        subprocess.run(["head", "-c", str(GIB), "/dev/urandom"], stdout=f, check=True)
    splice_cat = build_splice_cat(work)
    server = subprocess.Popen([kn, "run-file-server", "0", recv, "--host", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        m = re.search(r"^listening on 127\.0\.0\.1:(\d+)", server.stdout.readline())
        if not m:
            sys.exit("the server did not start")
        port = m.group(1)
        send = [kn, "send-file", "127.0.0.1", port]
        ways = {
            "file": (None, send + [big, "--remote-name", "file.bin"], None),
            "pipe": (["cat", big], send + ["-", "--remote-name", "pipe.bin"], None),
            "splice": (splice_cat and [splice_cat, big],
                       send + ["-", "--remote-name", "splice.bin"], None),
            "stdin": (None, send + ["-", "--remote-name", "stdin.bin"], big),
        }
        ways = {k: w for k, w in ways.items() if k != "splice" or splice_cat}
        # Warm-up, discarded: the first GiB written to a fresh tmpfs pays for its pages.
        run_once(server, ways["file"], big, os.path.join(recv, "file.bin"))
        runs = {k: [] for k in ways}
        for r in range(1, rounds + 1):
            for what, way in ways.items():
                got = run_once(server, way, big, os.path.join(recv, what + ".bin"))
                runs[what].append(got)
                print("round %d %-6s %7.1f MiB/s   CPU s/GiB: sender %.3f producer %.3f "
                      "receiver %.3f" % ((r, what) + got), flush=True)
    finally:
        server.terminate()
        server.wait()
    report(runs)


def build_splice_cat(work):
    """The zero-copy producer, compiled into `work`; None (and a note) without a C compiler."""
    exe = os.path.join(work, "splice_cat")
    cc = shutil.which("cc")
    if cc is None:
        print("no cc: the splice case is left out", file=sys.stderr)
        return None
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(ROOT, "bench", "splice_cat.c")],
                   check=True)
    return exe


def run_once(server, way, big, target):
    """One send: (MiB/s, sender, producer and receiver CPU seconds per GiB)."""
    producer_cmd, sender_cmd, stdin_path = way
    if os.path.exists(target):
        os.unlink(target)
    before = server_cpu(server.pid)
    started = time.monotonic()
    producer, stdin = None, subprocess.DEVNULL
    if producer_cmd:
        producer = subprocess.Popen(producer_cmd, stdout=subprocess.PIPE)
        stdin = producer.stdout
    elif stdin_path:
        stdin = open(stdin_path, "rb")
    sender = subprocess.Popen(sender_cmd + ["--no-progress"], stdin=stdin,
                              stdout=subprocess.DEVNULL)
    if stdin not in (None, subprocess.DEVNULL):
        stdin.close()
    sender_s = cpu_of(sender)
    producer_s = cpu_of(producer) if producer else 0.0
    wall = time.monotonic() - started
    receiver_s = server_cpu(server.pid) - before
    if sender.returncode != 0 or (producer and producer.returncode != 0):
        sys.exit("%s failed" % " ".join(sender_cmd))
    if subprocess.run(["cmp", "-s", big, target]).returncode != 0:
        sys.exit("%s differs from %s" % (target, big))
    gib = os.path.getsize(big) / GIB
    return (1024 * gib / wall, sender_s / gib, producer_s / gib, receiver_s / gib)


def cpu_of(proc):
    """Waits for `proc`; its user and system CPU seconds."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def server_cpu(pid):
    """The CPU seconds all of the server's threads have run so far."""
    ns = 0
    for f in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(f) as s:
                ns += int(s.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return ns / 1e9


def report(runs):
    med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in runs.items()}
    print("\nmedians of %d rounds:" % len(runs["file"]))
    print("  %-6s %9s %8s   %-32s %s" % ("", "MiB/s", "/ file", "CPU s/GiB: sender producer "
                                       "receiver", "total"))
    base = med["file"][0]
    for k, (mibs, s, p, r) in med.items():
        print("  %-6s %9.1f %8.3f   %17.3f %8.3f %8.3f %8.3f" % (k, mibs, mibs / base, s, p, r,
                                                              s + p + r))
    # The one-line summary the closing notes quote.
    print("pipe / file %.3f, %s stdin / file %.3f" % (
        med["pipe"][0] / base,
        "splice / file %.3f," % (med["splice"][0] / base) if "splice" in med else "",
        med["stdin"][0] / base))


if __name__ == "__main__":
    main()
