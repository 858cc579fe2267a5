#!/usr/bin/env python3
"""Object-store benchmark (issue 14): the same data sent with knsock into a local S3 engine
(SeaweedFS `weed mini`, started by scripts/seaweedfs.sh) and into a local directory, and
uploaded to the same engine by its own kind of client (boto3: `upload_file`, as the AWS CLI's
`aws s3 cp` does it, and a 10-thread pool for many small files, the AWS CLI's default
concurrency), interleaved in the same run, best and median of the rounds.

Cases: one 1 GiB file; 2,000 files of 4 KiB; and those 2,000 files fetched back
(`kn-sock fetch-file -r` from the receiver that stored them, which lists the bucket and HEADs
each object, against boto3 downloading them with 10 threads). `--cases` picks some of
big,small,fetch. `--kn-sock-before PATH` also runs the fetch through a receiver of another
build (an earlier one, for a baseline in the same run), interleaved.

Usage: bench/s3.py [--rounds 3] [--out /dev/shm] [--gib 1] [--cases big,small,fetch]
                   [--kn-sock-before PATH] [--s3-delay-ms D]
`--s3-delay-ms D` puts ../shared/bench/wan_proxy.py (one-way delay D, so a round trip of 2D)
between every client and the engine, as a store in another building would be.
Run it with the Python that has boto3: bench/s3.sh makes one in
${KNSOCK_S3_VENV:-~/.cache/knsock/s3-venv} and runs this with it.
Needs a release build (cargo build --release).
"""
import argparse, atexit, os, shutil, statistics, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KN = os.path.join(ROOT, "target", "release", "kn-sock")
KEY, SECRET = "knsock-test", "knsock-test-secret"


def start_server(target, spool, env, kn=KN):
    args = [kn, "run-file-server", "0", target, "--host", "127.0.0.1"]
    if target.startswith("s3://"):
        args += ["--s3-path-style", "--spool-dir", spool, "--allow-fetch",
                 "--allow-anonymous-fetch"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
    first = p.stdout.readline()
    if not first.startswith("listening on 127.0.0.1:"):
        sys.exit(f"kn-sock server did not start: {first!r}")
    # It prints a line per file: drain them, or a full pipe stops the server.
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, int(first.strip().rsplit(":", 1)[1])


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def send(port, paths, recursive=False):
    args = [KN, "send-file"] + (["-r"] if recursive else []) + ["127.0.0.1", str(port)] + paths
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--cases", default="big,small,fetch")
    ap.add_argument("--kn-sock-before")
    ap.add_argument("--s3-delay-ms", type=float, default=0)
    a = ap.parse_args()
    a.cases = set(a.cases.split(","))
    if not os.path.exists(KN):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="knsock-s3-bench-", dir=a.out)
    weed = os.path.join(work, "weed")
    try:
        subprocess.run([os.path.join(ROOT, "scripts", "seaweedfs.sh"), "start", weed],
                       check=True, stdout=subprocess.DEVNULL)
        endpoint = open(os.path.join(weed, "endpoint")).read().strip()
        if a.s3_delay_ms:
            proxy = delayed(endpoint, a.s3_delay_ms)
            endpoint = "http://127.0.0.1:%d" % proxy.port
        run(a, work, endpoint)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "seaweedfs.sh"), "stop", weed],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def run(a, work, endpoint):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "small"))
    big = os.path.join(src, "big.bin")
    with open(big, "wb") as f:
        for _ in range(int(a.gib * 1024)):
            f.write(os.urandom(1 << 20))
    small = sorted(os.path.join(src, "small", f"f{i:04}.txt") for i in range(2000))
    for p in small:
        with open(p, "wb") as f:
            f.write(os.urandom(4096))
    dest = os.path.join(work, "dest")
    os.makedirs(dest)
    spool = os.path.join(work, "spool")
    os.makedirs(spool)
    to_dir, dir_port = start_server(dest, None, env)
    to_s3, s3_port = start_server("s3://bench/knsock", spool, env)
    results = {}

    def record(case, who, seconds):
        results.setdefault((case, who), []).append(seconds)

    before = None
    if a.kn_sock_before:
        before, before_port = start_server("s3://bench/knsock", spool, env, a.kn_sock_before)
    smalldir = os.path.join(src, "small")
    keys = [f"knsock/small/{os.path.basename(p)}" for p in small]  # what boto3 reads back
    try:
        if "fetch" in a.cases and "small" not in a.cases:
            send(s3_port, [smalldir], True)  # what the fetches read back
        for r in range(a.rounds):
            if "big" in a.cases:
                record("1 GiB", "knsock -> directory", timed(lambda: send(dir_port, [big])))
                record("1 GiB", "knsock -> S3", timed(lambda: send(s3_port, [big])))
                record("1 GiB", "boto3 upload_file -> S3",
                       timed(lambda: s3.upload_file(big, "bench", f"boto3/big-{r}.bin")))
            if "small" in a.cases:
                record("2,000 x 4 KiB", "knsock -> directory",
                       timed(lambda: send(dir_port, [smalldir], True)))
                record("2,000 x 4 KiB", "knsock -> S3",
                       timed(lambda: send(s3_port, [smalldir], True)))
                record("2,000 x 4 KiB", "boto3, 10 threads -> S3",
                       timed(lambda: pool_upload(s3, small, f"boto3-{r}")))
                record("2,000 x 4 KiB", "boto3, one by one -> S3",
                       timed(lambda: [s3.upload_file(p, "bench",
                                                     f"boto3s-{r}/{os.path.basename(p)}")
                                      for p in small]))
            if "fetch" in a.cases:
                case = "2,000 x 4 KiB back"
                record(case, "S3 -> knsock fetch-file -r",
                       timed(lambda: fetch(s3_port, work, "small", 2000)))
                if before:
                    record(case, "S3 -> knsock fetch-file -r (--kn-sock-before)",
                           timed(lambda: fetch(before_port, work, "small", 2000)))
                record(case, "S3 -> boto3, 10 threads",
                       timed(lambda: pool_download(s3, keys, os.path.join(work, "got"))))
    finally:
        to_dir.terminate()
        to_s3.terminate()
        if before:
            before.terminate()
    print(f"\n{a.rounds} rounds; wall seconds, best / median (SeaweedFS weed mini on 127.0.0.1)")
    print(f"| case | sender -> destination | best | median |\n|---|---|---|---|")
    for (case, who), times in results.items():
        print(f"| {case} | {who} | {min(times):.2f} | {statistics.median(times):.2f} |")


def delayed(endpoint, delay_ms):
    """A wan_proxy in front of the engine at ENDPOINT (http://127.0.0.1:PORT), ended with us."""
    shared = os.environ.get("KNSOCK_SHARED", os.path.join(ROOT, "..", "shared"))
    port = endpoint.rsplit(":", 1)[1]
    p = subprocess.Popen([sys.executable, os.path.join(shared, "bench", "wan_proxy.py"),
                          "--listen", "0", "--target", port, "--delay-ms", str(delay_ms)],
                         stdout=subprocess.PIPE, text=True)
    atexit.register(p.terminate)
    p.port = int(p.stdout.readline().strip().rsplit(":", 1)[1])
    return p


def fetch(port, work, name, count):
    """Fetches NAME (a directory) into a fresh directory and checks that COUNT files came."""
    to = os.path.join(work, "fetched")
    shutil.rmtree(to, ignore_errors=True)
    subprocess.run([KN, "fetch-file", "-r", "127.0.0.1", str(port), name, "--to", to],
                   check=True, stdout=subprocess.DEVNULL)
    got = sum(len(files) for _, _, files in os.walk(to))
    if got != count:
        sys.exit(f"fetched {got} files, not {count}")


def pool_download(s3, keys, to):
    shutil.rmtree(to, ignore_errors=True)
    os.makedirs(to)
    with ThreadPoolExecutor(10) as ex:
        list(ex.map(lambda k: s3.download_file("bench", k, os.path.join(to, k.rsplit("/", 1)[1])),
                    keys))


def pool_upload(s3, paths, prefix):
    with ThreadPoolExecutor(10) as ex:
        list(ex.map(lambda p: s3.upload_file(p, "bench", f"{prefix}/{os.path.basename(p)}"),
                    paths))


if __name__ == "__main__":
    main()
