//! The `kn-sock` binary as a test drives it: a `run-file-server` child whose stdout lines are
//! read as events, `send-file` runs, and their output as text.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};

use super::BIN;

/// A `kn-sock run-file-server` child on 127.0.0.1; stdout lines are its events.
pub struct CliServer {
    pub child: Child,
    pub lines: std::io::Lines<BufReader<ChildStdout>>,
    pub port: u16,
}

impl CliServer {
    /// Starts it on `dir` with `extra` options and reads the port from its first line.
    pub fn start(dir: &Path, extra: &[&str]) -> CliServer {
        let mut cmd = Command::new(BIN);
        cmd.args(["run-file-server", "0"])
            .arg(dir)
            .args(["--host", "127.0.0.1"])
            .args(extra)
            .stderr(Stdio::null());
        CliServer::spawn(cmd)
    }

    /// Runs `cmd`, a `kn-sock run-file-server` on port 0, and reads the port it prints first.
    pub fn spawn(mut cmd: Command) -> CliServer {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
        let port = first.rsplit(':').next().unwrap().parse().unwrap();
        CliServer { child, lines, port }
    }

    pub fn next_line(&mut self) -> String {
        self.lines.next().unwrap().unwrap()
    }

    /// Sends SIGTERM (what Ctrl-C and service managers send) and waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.terminate_and_wait()
    }

    /// [`CliServer::terminate`] keeping the handle (its directory, its drop).
    pub fn terminate_and_wait(&mut self) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for CliServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kn-sock send-file 127.0.0.1 PORT ARGS...`, run to its end.
pub fn send(port: u16, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["send-file", "127.0.0.1", &port.to_string()])
        .args(args)
        .output()
        .unwrap()
}

/// `kn-sock ARGS...`, run to its end.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
