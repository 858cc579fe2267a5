//! Throughput of knsock against a real `kn-sock run-file-server` process on loopback.
//!   cargo bench --bench transfer -- big FILE OUTDIR     prints "knsock MiB/s N" and receiver RSS
//!   cargo bench --bench transfer -- small DIR OUTDIR    prints "knsock files/s N" (one send_file each)
//!   cargo bench --bench transfer -- batch DIR OUTDIR    prints "knsock batch files/s N" (one send_files)
//!   cargo bench --bench transfer -- zstd LABEL FILE OUTDIR  prints "knsock LABEL raw|zstd MiB/s N"
//! KNSOCK_BIN names the kn-sock binary (default: target/release/kn-sock).
//! bench/run.sh interleaves it with the shared baselines; run that for comparisons.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use knsock::{send_file, SendOptions};

struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    fn start(outdir: &Path) -> Receiver {
        let exe = std::env::var_os("KNSOCK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kn-sock")
            });
        let mut child = Command::new(&exe)
            .args(["run-file-server", "0"])
            .arg(outdir)
            .args(["--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run cargo build --release first)", exe.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        Receiver { child, port }
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
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
    let opts = SendOptions::default();
    match mode {
        "big" => {
            let size = std::fs::metadata(&input).unwrap().len();
            let t = Instant::now();
            send_file("127.0.0.1", rx.port, &input, &opts).unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!("knsock MiB/s {:.1}", size as f64 / (1 << 20) as f64 / secs);
            println!("knsock rx_peak_rss_kib {}", rx.peak_rss_kib());
        }
        "batch" => {
            let walk = knsock::WalkOptions {
                recursive: true,
                ..Default::default()
            };
            let sources = knsock::collect_sources(std::slice::from_ref(&input), &walk).unwrap();
            let t = Instant::now();
            let report = knsock::send_files("127.0.0.1", rx.port, &sources, &opts).unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(report.failed(), 0, "{:?}", report.first_error());
            println!("knsock batch files/s {:.1}", sources.len() as f64 / secs);
            println!("knsock batch rx_peak_rss_kib {}", rx.peak_rss_kib());
        }
        "small" => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&input)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            let t = Instant::now();
            for f in &files {
                send_file("127.0.0.1", rx.port, f, &opts).unwrap();
            }
            let secs = t.elapsed().as_secs_f64();
            println!("knsock files/s {:.1}", files.len() as f64 / secs);
            println!("knsock rx_peak_rss_kib {}", rx.peak_rss_kib());
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
