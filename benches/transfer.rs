//! Throughput of knsock against a real `kn-sock run-file-server` process on loopback.
//!   cargo bench --bench transfer -- big FILE OUTDIR     prints "knsock MiB/s N" and receiver RSS
//!   cargo bench --bench transfer -- small DIR OUTDIR    prints "knsock files/s N" (one send_file each)
//!   cargo bench --bench transfer -- batch DIR OUTDIR    prints "knsock batch files/s N" (one send_files)
//!   cargo bench --bench transfer -- zstd LABEL FILE OUTDIR  prints "knsock LABEL raw|zstd MiB/s N"
//!   cargo bench --bench transfer -- fanout FILE OUTDIR  one send_file to one receiver, then
//!       send_files_to_many to three, in the same run: wall time, the ratio, CPU s/GiB per side
//! KNSOCK_BIN names the kn-sock binary (default: target/release/kn-sock). With KNSOCK_BENCH_TLS=1
//! the receiver serves TLS (self-signed, verified by its pin), labels start "knsock tls", and
//! `big` also prints each side's CPU seconds per GiB.
//! bench/run.sh interleaves it with the shared baselines; run that for comparisons.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use knsock::{send_file, SendOptions};

struct Receiver {
    child: Child,
    port: u16,
    pin: Option<String>,
    _state: Option<tempfile::TempDir>,
}

fn tls_on() -> bool {
    std::env::var_os("KNSOCK_BENCH_TLS").is_some_and(|v| v == "1")
}

/// CPU seconds (user + system) a process has used so far, from /proc (100 ticks a second).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

impl Receiver {
    fn start(outdir: &Path) -> Receiver {
        let exe = std::env::var_os("KNSOCK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kn-sock")
            });
        let state = tls_on().then(|| tempfile::tempdir().unwrap());
        let mut cmd = Command::new(&exe);
        cmd.args(["run-file-server", "0"])
            .arg(outdir)
            .args(["--host", "127.0.0.1"]);
        if let Some(s) = &state {
            cmd.arg("--tls-self-signed").arg(s.path());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run cargo build --release first)", exe.display()));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        let pin = state.as_ref().map(|_| {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            l.trim().trim_start_matches("tls pin ").to_string()
        });
        Receiver {
            child,
            port,
            pin,
            _state: state,
        }
    }

    fn options(&self) -> SendOptions {
        SendOptions {
            tls: self.pin.as_ref().map(|p| knsock::TlsOptions {
                pin: Some(p.clone()),
                ..Default::default()
            }),
            ..SendOptions::default()
        }
    }

    /// Peak resident memory of the receiver process, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a run of many files costs on each side, per 1,000 files: steadier than files/s on a
/// busy machine.
struct FilesCpu<'a> {
    rx_pid: &'a str,
    tx0: f64,
    rx0: f64,
}

impl<'a> FilesCpu<'a> {
    fn start(rx_pid: &'a str) -> Self {
        FilesCpu {
            rx_pid,
            tx0: cpu_seconds("self"),
            rx0: cpu_seconds(rx_pid),
        }
    }

    fn print(&self, label: &str, files: usize) {
        let per_k = 1000.0 * 1000.0 / files as f64; // ms per 1,000 files
        let tx = (cpu_seconds("self") - self.tx0) * per_k;
        let rx = (cpu_seconds(self.rx_pid) - self.rx0) * per_k;
        println!("{label} sender_cpu_ms_per_kfile {tx:.1}");
        println!("{label} receiver_cpu_ms_per_kfile {rx:.1}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [m, file, outdir] = args.as_slice() {
        if m == "fanout" {
            return fanout(Path::new(file), Path::new(outdir));
        }
    }
    if let [m, label, file, outdir] = args.as_slice() {
        if m == "zstd" {
            return compression(label, Path::new(file), Path::new(outdir));
        }
    }
    let (mode, input, outdir) = match args.as_slice() {
        [m, i, o] => (m.as_str(), PathBuf::from(i), PathBuf::from(o)),
        _ => {
            eprintln!("usage: transfer big FILE OUTDIR | small DIR OUTDIR");
            return;
        }
    };
    let rx_dir = tempfile::tempdir_in(&outdir).unwrap();
    let rx = Receiver::start(rx_dir.path());
    let opts = rx.options();
    let label = if tls_on() { "knsock tls" } else { "knsock" };
    let rx_pid = rx.child.id().to_string();
    match mode {
        "big" => {
            let size = std::fs::metadata(&input).unwrap().len();
            let (cpu_tx0, cpu_rx0) = (cpu_seconds("self"), cpu_seconds(&rx_pid));
            let t = Instant::now();
            send_file("127.0.0.1", rx.port, &input, &opts).unwrap();
            let secs = t.elapsed().as_secs_f64();
            let gib = size as f64 / (1u64 << 30) as f64;
            let (cpu_tx, cpu_rx) = (
                cpu_seconds("self") - cpu_tx0,
                cpu_seconds(&rx_pid) - cpu_rx0,
            );
            println!("{label} MiB/s {:.1}", size as f64 / (1 << 20) as f64 / secs);
            println!("{label} sender_cpu_s_per_gib {:.3}", cpu_tx / gib);
            println!("{label} receiver_cpu_s_per_gib {:.3}", cpu_rx / gib);
            println!("{label} rx_peak_rss_kib {}", rx.peak_rss_kib());
        }
        "batch" => {
            let walk = knsock::WalkOptions {
                recursive: true,
                ..Default::default()
            };
            let sources = knsock::collect_sources(std::slice::from_ref(&input), &walk).unwrap();
            let cpu = FilesCpu::start(&rx_pid);
            let t = Instant::now();
            let report = knsock::send_files("127.0.0.1", rx.port, &sources, &opts).unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(report.failed(), 0, "{:?}", report.first_error());
            println!("{label} batch files/s {:.1}", sources.len() as f64 / secs);
            cpu.print(&format!("{label} batch"), sources.len());
            println!("{label} batch rx_peak_rss_kib {}", rx.peak_rss_kib());
        }
        "small" => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&input)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let cpu = FilesCpu::start(&rx_pid);
            let t = Instant::now();
            for f in &files {
                send_file("127.0.0.1", rx.port, f, &opts).unwrap();
            }
            let secs = t.elapsed().as_secs_f64();
            println!("{label} files/s {:.1}", files.len() as f64 / secs);
            cpu.print(label, files.len());
            println!("{label} rx_peak_rss_kib {}", rx.peak_rss_kib());
        }
        m => eprintln!("unknown mode {m}"),
    }
}

/// One file sent without and with compression, each to a fresh receiver.
fn compression(label: &str, file: &Path, outdir: &Path) {
    let size = std::fs::metadata(file).unwrap().len();
    for compress in [false, true] {
        let rx_dir = tempfile::tempdir_in(outdir).unwrap();
        let rx = Receiver::start(rx_dir.path());
        let opts = SendOptions {
            compress,
            ..SendOptions::default()
        };
        let t = Instant::now();
        send_file("127.0.0.1", rx.port, file, &opts).unwrap();
        let mibs = size as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
        let how = if compress { "zstd" } else { "raw" };
        println!("knsock {label} {how} MiB/s {mibs:.1}");
    }
}

/// The same file to one receiver (send_file), then to three at once (send_files_to_many),
/// each receiver a `kn-sock run-file-server` process: wall seconds, their ratio (the target is
/// at most 1.3), and CPU seconds per GiB of file on the sender and on the receivers together.
fn fanout(file: &Path, outdir: &Path) {
    let size = std::fs::metadata(file).unwrap().len();
    let gib = size as f64 / (1u64 << 30) as f64;
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir_in(outdir).unwrap())
        .collect();
    let rxs: Vec<Receiver> = dirs.iter().map(|d| Receiver::start(d.path())).collect();
    let rx_cpu = || -> f64 {
        rxs.iter()
            .map(|r| cpu_seconds(&r.child.id().to_string()))
            .sum()
    };
    let measure = |send: &dyn Fn()| {
        let (tx0, rx0, t) = (cpu_seconds("self"), rx_cpu(), Instant::now());
        send();
        let wall = t.elapsed().as_secs_f64();
        (
            wall,
            (cpu_seconds("self") - tx0) / gib,
            (rx_cpu() - rx0) / gib,
        )
    };
    let opts = SendOptions::default();
    let single = measure(&|| {
        send_file("127.0.0.1", rxs[0].port, file, &opts).unwrap();
    });
    let receivers: Vec<_> = rxs
        .iter()
        .map(|r| knsock::Receiver::new("127.0.0.1", r.port))
        .collect();
    let source = knsock::Source {
        path: file.to_path_buf(),
        name: "fanout.bin".into(),
        size,
    };
    let many = measure(&|| {
        let report =
            knsock::send_files_to_many(&receivers, std::slice::from_ref(&source), &opts).unwrap();
        assert_eq!(report.failed_receivers(), 0, "{report:?}");
    });
    for (label, (wall, tx, rx)) in [("single", single), ("x3", many)] {
        println!("knsock fanout {label} wall_s {wall:.3}");
        println!("knsock fanout {label} sender_cpu_s_per_gib {tx:.3}");
        println!("knsock fanout {label} receivers_cpu_s_per_gib {rx:.3}");
    }
    println!("ratio fanout x3/single wall {:.3}", many.0 / single.0);
}
