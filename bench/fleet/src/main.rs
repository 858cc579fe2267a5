//! The fleet load generator (issue 17): `SENDERS` senders connect to one receiver within a ramp,
//! each trickling a file of `SIZE` bytes over about `OVER` seconds (content in 16 pieces, never
//! idle longer than the receiver's timeouts allow), while quick sends by the `kn-sock` CLI are
//! timed. Afterwards it checks every file that arrived, byte for byte, and reports the
//! receiver's peak memory and threads. `bench/fleet.sh` runs it against `kn-sock
//! run-file-server`.
//!
//! ```text
//! fleet ADDR [--senders N] [--size BYTES] [--over SECS] [--ramp SECS] [--dir DIR]
//!            [--probe-bin KN_SOCK] [--probes N] [--server-pid PID]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use knsock::protocol::{Frame, Hello, Offer, ALGO_XXH3_128};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Pieces a file's content is sent in, spread over `--over`.
const PIECES: u64 = 16;

struct Args {
    addr: SocketAddr,
    senders: u64,
    size: u64,
    over: Duration,
    ramp: Duration,
    dir: Option<PathBuf>,
    probe_bin: Option<PathBuf>,
    probes: u32,
    server_pid: Option<u32>,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let addr = it
        .next()
        .ok_or("usage: fleet ADDR [--senders N] [--size BYTES] [--over SECS] [--ramp SECS] [--dir DIR] [--probe-bin KN_SOCK] [--probes N] [--server-pid PID]")?
        .parse()
        .map_err(|e| format!("ADDR: {e}"))?;
    let mut a = Args {
        addr,
        senders: 10_000,
        size: 16 * 1024,
        over: Duration::from_secs(30),
        ramp: Duration::from_secs(10),
        dir: None,
        probe_bin: None,
        probes: 20,
        server_pid: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--senders" => a.senders = num()?,
            "--size" => a.size = num()?,
            "--over" => a.over = Duration::from_secs(num()?),
            "--ramp" => a.ramp = Duration::from_secs(num()?),
            "--dir" => a.dir = Some(value.into()),
            "--probe-bin" => a.probe_bin = Some(value.into()),
            "--probes" => a.probes = num()? as u32,
            "--server-pid" => a.server_pid = Some(num()? as u32),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

/// Sender `i`'s content: deterministic, different for every sender.
fn content(i: u64, size: u64) -> Vec<u8> {
    knsock::internals::random_bytes(size as usize, i + 1)
}

fn name(i: u64) -> String {
    format!("fleet/s{i:05}.bin")
}

async fn write_frame(s: &mut TcpStream, f: Frame) -> std::io::Result<()> {
    let mut out = Vec::new();
    f.encode(&mut out);
    s.write_all(&out).await
}

/// How long a sender waits for the receiver, as the CLI's default idle timeout.
const IDLE: Duration = Duration::from_secs(30);

/// Reads exactly `buf.len()` bytes within [`IDLE`].
async fn read_exact(s: &mut TcpStream, buf: &mut [u8], what: &str) -> Result<(), String> {
    match tokio::time::timeout(IDLE, s.read_exact(buf)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out")),
    }
}

async fn read_frame(s: &mut TcpStream) -> Result<Frame, String> {
    let mut head = [0u8; 5];
    read_exact(s, &mut head, "reading a frame").await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut buf = head.to_vec();
    buf.resize(5 + len.min(1 << 16), 0);
    read_exact(s, &mut buf[5..], "reading a frame").await?;
    match Frame::read_from(&mut &buf[..]) {
        Ok(Some(f)) => Ok(f),
        other => Err(format!("bad frame: {other:?}")),
    }
}

/// One slow sender: hello, OFFER, ACCEPT, the content in pieces over `over`, DONE, OK.
async fn sender(addr: SocketAddr, i: u64, size: u64, over: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut out = Vec::new();
    // No capabilities: stop and wait, so only the idle timeout applies to the content.
    Hello::ours(0).encode(&mut out);
    s.write_all(&out).await.map_err(|e| format!("hello: {e}"))?;
    let mut reply = [0u8; 12];
    read_exact(&mut s, &mut reply, "reading the receiver's hello").await?;
    let ext = u16::from_be_bytes([reply[10], reply[11]]) as usize;
    let mut skip = vec![0u8; ext.min(1024)];
    read_exact(&mut s, &mut skip, "hello extension").await?;
    if u16::from_be_bytes([reply[8], reply[9]]) == 0 {
        return Err(format!("refused: {:?}", read_frame(&mut s).await));
    }
    let data = content(i, size);
    let offer = Offer {
        mtime_secs: 1_764_000_000,
        ..Offer::new(name(i), size)
    };
    write_frame(&mut s, Frame::Offer(offer))
        .await
        .map_err(|e| format!("offer: {e}"))?;
    match read_frame(&mut s).await? {
        Frame::Accept { offset: 0 } => {}
        f => return Err(format!("answer: {f:?}")),
    }
    let piece = size.div_ceil(PIECES).max(1) as usize;
    let pause = over / PIECES as u32;
    for chunk in data.chunks(piece) {
        tokio::time::sleep(pause).await;
        s.write_all(chunk)
            .await
            .map_err(|e| format!("content: {e}"))?;
    }
    let done = Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest: xxhash_rust::xxh3::xxh3_128(&data).to_be_bytes().to_vec(),
    };
    write_frame(&mut s, done)
        .await
        .map_err(|e| format!("done: {e}"))?;
    match read_frame(&mut s).await? {
        Frame::Ok { .. } => {}
        f => return Err(format!("verdict: {f:?}")),
    }
    let _ = write_frame(&mut s, Frame::Bye).await;
    Ok(())
}

/// Quick sends by the CLI while the fleet runs: (seconds each took, failures).
fn probes(a: &Args, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<f64>, Vec<String>)> {
    let (bin, addr, n) = (a.probe_bin.clone(), a.addr, a.probes);
    let every = (a.ramp + a.over).as_secs_f64() / (n.max(1) as f64 + 1.0);
    std::thread::spawn(move || {
        let Some(bin) = bin else {
            return (Vec::new(), Vec::new());
        };
        let file = std::env::temp_dir().join(format!("knsock-fleet-probe-{}", std::process::id()));
        std::fs::write(&file, content(u64::MAX - 1, 4096)).unwrap();
        let (mut times, mut failures) = (Vec::new(), Vec::new());
        for k in 0..n {
            // A benchmark's schedule, not a test's wait: probes spread over the run.
            std::thread::sleep(Duration::from_secs_f64(every));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let t = Instant::now();
            let out = std::process::Command::new(&bin)
                .args([
                    "send-file",
                    &addr.ip().to_string(),
                    &addr.port().to_string(),
                ])
                .arg(&file)
                .args([
                    "--remote-name",
                    &format!("probe/p{k:02}.bin"),
                    "--no-progress",
                ])
                .output()
                .unwrap();
            times.push(t.elapsed().as_secs_f64());
            if !out.status.success() {
                failures.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
        }
        let _ = std::fs::remove_file(&file);
        (times, failures)
    })
}

/// Samples the receiver's threads while the run lasts; returns the most seen.
fn watch_threads(pid: Option<u32>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut most = 0;
        while let Some(pid) = pid.filter(|_| !stop.load(Ordering::Relaxed)) {
            most = most.max(status_field(pid, "Threads:").unwrap_or(0));
            std::thread::sleep(Duration::from_millis(200));
        }
        most
    })
}

/// A number from /proc/PID/status (kB for memory fields).
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleet: {e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probes(&a, stop.clone());
    let threads = watch_threads(a.server_pid, stop.clone());
    let started = Instant::now();
    let ok = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let errors: BTreeMap<String, u64> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..a.senders {
            let delay = a.ramp.mul_f64(i as f64 / a.senders as f64);
            let (addr, size, over, ok) = (a.addr, a.size, a.over, ok.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let r = sender(addr, i, size, over).await;
                if r.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                r
            }));
        }
        let mut errors = BTreeMap::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                // Group by the message without numbers (ports, sizes).
                let key: String = e.chars().filter(|c| !c.is_ascii_digit()).collect();
                *errors.entry(key).or_insert(0) += 1;
            }
        }
        errors
    });
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut times, probe_failures) = probe.join().unwrap();
    let most_threads = threads.join().unwrap();

    let ok = ok.load(Ordering::Relaxed);
    println!(
        "senders: {ok} of {} verified by the receiver (OK) in {:.1} s",
        a.senders,
        elapsed.as_secs_f64()
    );
    for (e, n) in &errors {
        println!("  {n} failed: {e}");
    }
    if let Some(dir) = &a.dir {
        let whole = (0..a.senders)
            .filter(|i| std::fs::read(dir.join(name(*i))).ok() == Some(content(*i, a.size)))
            .count();
        println!("files: {whole} of {} in {} whole", a.senders, dir.display());
    }
    if !times.is_empty() {
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "probes (kn-sock send-file, 4 KiB): {} of {} succeeded, median {:.3} s, max {:.3} s",
            times.len() - probe_failures.len(),
            times.len(),
            median(&mut times),
            max
        );
        for f in &probe_failures {
            println!("  probe failed: {f}");
        }
    }
    if let Some(pid) = a.server_pid {
        let hwm = status_field(pid, "VmHWM:").unwrap_or(0);
        println!(
            "receiver: peak RSS {} MiB, most threads seen {most_threads}",
            hwm / 1024
        );
    }
}
