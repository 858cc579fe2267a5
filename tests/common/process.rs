//! A receiver in a process of its own, for the tests that kill it (SIGKILL) or limit its
//! descriptors: this test binary run again, as its `common::child_receiver` test, which serves
//! with the library's defaults (knsock's, not the CLI's: these tests are the library's).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use knsock::ServerConfig;

/// The directory the child receiver serves (its spool with `CHILD_S3`).
const CHILD_DIR: &str = "KNSOCK_TEST_CHILD_DIR";
/// `s3://BUCKET/PREFIX`: the child stores there (endpoint and keys from `AWS_*`, path style).
const CHILD_S3: &str = "KNSOCK_TEST_CHILD_S3";

/// A receiver process on 127.0.0.1, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
}

impl ServerProcess {
    /// A receiver on `dir`, under `ulimit -n` when `nofile` is given.
    pub fn start(dir: &Path, nofile: Option<u32>) -> ServerProcess {
        let limit = nofile.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "{limit}exec \"$0\" --exact common::process::child_receiver --ignored \
                 --nocapture --test-threads 1"
            ))
            .arg(std::env::current_exe().unwrap())
            .env(CHILD_DIR, dir)
            .env_remove(CHILD_S3)
            .stderr(Stdio::null());
        ServerProcess::spawn(cmd)
    }

    /// A receiver storing into `url` (s3://BUCKET/PREFIX), spooling in `spool`; `cmd_env` adds
    /// the store's environment (`AWS_*`).
    pub fn start_s3(url: &str, spool: &Path, cmd_env: impl FnOnce(&mut Command)) -> ServerProcess {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "common::process::child_receiver", "--ignored"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(CHILD_DIR, spool)
            .env(CHILD_S3, url)
            .stderr(Stdio::null());
        cmd_env(&mut cmd);
        ServerProcess::spawn(cmd)
    }

    /// Runs `cmd` and reads the port from its `listening on` line (the test harness's own
    /// lines come first, and its `test NAME ... ` starts that line).
    fn spawn(mut cmd: Command) -> ServerProcess {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut said = Vec::new();
        for line in lines.take(20) {
            let line = line.unwrap();
            if let Some((_, addr)) = line.split_once("listening on 127.0.0.1:") {
                let port = addr.trim().parse().unwrap();
                return ServerProcess { child, port };
            }
            said.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the receiver process did not start: {said:?}");
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The receiver of a [`ServerProcess`]: serves until it is killed. It does anything only in
/// the child process `ServerProcess` starts; in a test run it returns at once.
#[test]
#[ignore = "the receiver process of ServerProcess, run by it"]
fn child_receiver() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mut cfg = ServerConfig::new(&dir);
    cfg.host("127.0.0.1");
    #[cfg(feature = "s3")]
    if let Ok(url) = std::env::var(CHILD_S3) {
        let mut s3 = knsock::S3Config::from_url(&url).unwrap();
        s3.path_style = true;
        cfg.s3(s3);
    }
    let server = cfg.start().unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", server.local_addr()).unwrap();
    out.flush().unwrap();
    drop(out);
    server.wait().unwrap();
}
