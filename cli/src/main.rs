//! `kn-sock`: the command-line tool, with kn-sock's command names, on knsock's Rust API: the
//! exit codes, and clap's errors in the tool's own style.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

mod args;
mod events;
mod fanout;
mod fetch;
mod http;
mod metrics;
mod send;
mod server;
mod words;

use args::{Cli, Command};

/// Exit status 2: the command line is wrong (clap's errors and kn-sock's own checks of it).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let result = match cli.command {
        Command::SendFile(args) => send::send_command(args),
        Command::FetchFile(args) => fetch::fetch_command(args),
        Command::RunFileServer(args) => server::server_command(args),
        Command::HashToken { name } => hash_token_command(&name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(message)) => {
            eprintln!("kn-sock: {}", knsock::printable(&message));
            ExitCode::from(USAGE)
        }
        Err(Fail::Failed(message)) => {
            eprintln!("kn-sock: {}", knsock::printable(&message));
            ExitCode::FAILURE
        }
    }
}

/// clap's error in kn-sock's style (`kn-sock: ...`, exit status 2); help and version go to
/// stdout as clap prints them.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print(); // the help, on stderr
            return ExitCode::from(USAGE);
        }
        _ => {}
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("kn-sock: {text}");
    ExitCode::from(USAGE)
}

/// Why a command failed, and so its exit status.
pub(crate) enum Fail {
    /// The command line is wrong: exit status 2.
    Usage(String),
    /// Something failed (a file, a connection, the server): exit status 1.
    Failed(String),
}

impl From<String> for Fail {
    fn from(message: String) -> Fail {
        Fail::Failed(message)
    }
}

impl From<&str> for Fail {
    fn from(message: &str) -> Fail {
        Fail::Failed(message.to_string())
    }
}

/// A mistake in the command line.
pub(crate) fn usage(message: impl Into<String>) -> Fail {
    Fail::Usage(message.into())
}

fn hash_token_command(name: &str) -> Result<(), Fail> {
    // The name must come back whole: "a:b" would split into the name "a" and a secret.
    match knsock::split_token(&format!("{name}:x")) {
        Ok((n, _)) if n == name => {}
        _ => {
            return Err(usage(format!(
                "token name {name:?}: use 1 to 64 of letters, digits, '.', '_', '-' (not starting with '.')"
            )))
        }
    }
    let mut secret = String::new();
    std::io::stdin()
        .read_line(&mut secret)
        .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
    let secret = secret.trim_end_matches(['\n', '\r']);
    let hash = knsock::hash_token(secret).map_err(words::explain)?;
    println!("{name}:{hash}");
    Ok(())
}

/// A local path as it is printed: escaped like everything from the network (a file name may hold
/// a newline or a terminal escape too).
fn shown(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    knsock::printable_bytes(path.as_os_str().as_bytes()).into_owned()
}
