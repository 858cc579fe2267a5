//! The command line of `kn-sock`: its subcommands, their options with defaults and ranges, and
//! the parsers for seconds and octal modes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use knsock::Receiver;

use crate::events::LogFormat;

#[derive(Parser)]
#[command(
    name = "kn-sock",
    version,
    about = "Reliable file transfer over TCP",
    after_help = "Exit status: 0 when everything was done, 1 when something failed (a file, a \
                  connection, the server), 2 when the command line is wrong."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Receive files into DIR until interrupted (Ctrl-C or SIGTERM stop it gracefully).
    RunFileServer(ServerArgs),
    /// Send files (and, with -r, directories) over one connection; each counts as delivered
    /// only once the receiver has it verified and in place. With --to (repeatable), to several
    /// receivers at once.
    SendFile(SendArgs),
    /// Fetch files back from a receiver that serves fetches (--allow-fetch): each verified,
    /// made durable and renamed into place under --to DIR, with its mtime and mode.
    FetchFile(FetchArgs),
    /// Read a token's secret from stdin and print the tokens-file line for NAME.
    HashToken {
        /// The token's name (the sender's identity).
        name: String,
    },
}

#[derive(clap::Args)]
pub(crate) struct ServerArgs {
    /// Port to listen on; 0 picks a free one (printed on the first line).
    pub(crate) port: u16,
    /// Directory to store files in (created when only its last component is missing), or
    /// s3://BUCKET/PREFIX to store them in an S3-compatible bucket (keys from AWS_ACCESS_KEY_ID
    /// and AWS_SECRET_ACCESS_KEY).
    pub(crate) dir: PathBuf,
    /// With s3://: the store's endpoint URL (default AWS_ENDPOINT_URL, else AWS's).
    #[arg(long, value_name = "URL")]
    pub(crate) s3_endpoint: Option<String>,
    /// With s3://: the region (default AWS_REGION, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub(crate) s3_region: Option<String>,
    /// With s3://: path-style URLs (ENDPOINT/BUCKET/KEY), as MinIO and SeaweedFS need.
    #[arg(long)]
    pub(crate) s3_path_style: bool,
    /// With s3://: trust these CA certificates (PEM) for an https endpoint.
    #[arg(long, value_name = "FILE")]
    pub(crate) s3_ca: Option<PathBuf>,
    /// With s3://: where content waits on its way to the bucket (default: knsock-spool-UID in
    /// the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) spool_dir: Option<PathBuf>,
    #[arg(long, default_value = "0.0.0.0")]
    pub(crate) host: String,
    /// Largest file accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_size: Option<u64>,
    /// Accept only these extensions, e.g. ".txt,.pdf".
    #[arg(long, value_name = "EXTS", value_delimiter = ',')]
    pub(crate) allow_ext: Vec<String>,
    /// What to do when a file of the same name exists.
    #[arg(long, value_enum, default_value_t = OverwriteArg::Replace)]
    pub(crate) overwrite: OverwriteArg,
    /// Free space to keep, in bytes: larger files are refused.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub(crate) reserve: u64,
    /// Connections served at once; over it a sender is told "busy, retry later". Also bounded
    /// by the descriptor limit (docs/operations.md).
    #[arg(long, default_value_t = knsock::DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: usize,
    /// Seconds a connection may make no progress.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) idle_timeout: f64,
    /// Seconds a whole message (or a small file sent eagerly) may take to arrive.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) header_timeout: f64,
    /// Connections that may decode compressed content at once (8 MiB each at most).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) max_decoders: usize,
    /// Bytes of stored files one connection may have hashed to skip unchanged files.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 30)]
    pub(crate) hash_budget: u64,
    /// Permission bits a received file may keep, in octal (default 755: no setuid, no write
    /// for group or others).
    #[arg(long, value_name = "OCTAL", default_value = "755", value_parser = octal)]
    pub(crate) mode_mask: u32,
    /// Refuse compressed content.
    #[arg(long)]
    pub(crate) no_compression: bool,
    /// Keep an interrupted upload's data this many seconds so a retry resumes it. Default 0,
    /// as in the library: an aborted upload leaves nothing behind.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub(crate) resume_ttl: f64,
    /// Serve TLS 1.3 with this certificate chain (PEM); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve TLS 1.3 with a self-signed identity kept in DIR (made on first start); its pin is
    /// printed on the second line: `tls pin sha256//...`.
    #[arg(long, value_name = "DIR")]
    pub(crate) tls_self_signed: Option<PathBuf>,
    /// Require a token from this file (NAME:HASH lines from `kn-sock hash-token`, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub(crate) tokens: Option<PathBuf>,
    /// Accept client certificates issued by this CA (PEM); the identity is the subject CN.
    #[arg(long, value_name = "FILE")]
    pub(crate) client_ca: Option<PathBuf>,
    /// Confine each identity to DIR/IDENTITY.
    #[arg(long)]
    pub(crate) confine: bool,
    /// UNSAFE: also accept plain (unencrypted, unauthenticated) knsock senders.
    #[arg(long)]
    pub(crate) allow_plaintext: bool,
    /// UNSAFE: also accept kn-sock 0.3 uploads (unencrypted, unauthenticated).
    #[arg(long)]
    pub(crate) allow_legacy: bool,
    /// Serve fetches (kn-sock fetch-file): each authenticated identity gets back what it may
    /// write (with --confine, its own directory).
    #[arg(long)]
    pub(crate) allow_fetch: bool,
    /// UNSAFE: with --allow-fetch, serve fetches to anonymous clients too: anyone who reaches
    /// the port reads every file.
    #[arg(long, requires = "allow_fetch")]
    pub(crate) allow_anonymous_fetch: bool,
    /// Serve Prometheus metrics on GET /metrics at HOST:PORT (a bare PORT: on 127.0.0.1).
    /// No file name or identity appears in them.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<String>,
    /// How events are written: text (received files on stdout, errors on stderr) or json (one
    /// object per line on stdout; fields in docs/operations.md).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

#[derive(clap::Args)]
pub(crate) struct SendArgs {
    /// HOST PORT PATH...: the receiver, then what to send. With --to, only PATH... A PATH of
    /// `-` sends standard input until its end (with --remote-name; `./-` is a file named `-`).
    #[arg(required = true, value_name = "HOST PORT PATH")]
    pub(crate) operands: Vec<OsString>,
    // In `help`, not a doc comment: rustdoc would take "[ADDR]" for a link.
    #[arg(
        long,
        value_name = "HOST:PORT",
        help = "A receiver as HOST:PORT ([ADDR]:PORT for IPv6). Repeat it to send the same files \
                to several receivers at once (each file read once); the operands are then only \
                paths."
    )]
    pub(crate) to: Vec<String>,
    /// Send directories with everything beneath them.
    #[arg(short, long)]
    pub(crate) recursive: bool,
    /// Send only files whose relative name matches one of these globs (e.g. '*.log').
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// Skip files whose relative name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// Follow symlinks (default: skip them).
    #[arg(long)]
    pub(crate) follow_symlinks: bool,
    /// Stop after the first file that fails.
    #[arg(long)]
    pub(crate) stop_on_error: bool,
    /// Do not send files the receiver already holds unchanged: by default the same size and
    /// modification time (rsync's quick check; nothing is read), with --checksum the same
    /// content digest.
    #[arg(long)]
    pub(crate) skip_unchanged: bool,
    /// With --skip-unchanged, compare content digests instead of size and mtime (like rsync -c).
    #[arg(long, requires = "skip_unchanged")]
    pub(crate) checksum: bool,
    /// Send changed files in full, never as a delta against the receiver's older copy.
    #[arg(long)]
    pub(crate) no_delta: bool,
    /// Compress with zstd (file by file; data that does not shrink is sent as it is).
    #[arg(long)]
    pub(crate) compress: bool,
    /// Retry a failed transfer this many times (resuming where the receiver's data ends).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) retries: u32,
    /// Seconds before the first retry; doubles with each retry.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub(crate) retry_delay: f64,
    /// Show a progress bar on stderr, even when it is not a terminal (by default only on one).
    #[arg(long, overrides_with = "no_progress")]
    pub(crate) show_progress: bool,
    /// Never show the progress bar (the last of --show-progress and --no-progress wins).
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Seconds without progress before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) timeout: f64,
    /// Bytes per read/write step.
    #[arg(long, value_name = "BYTES", default_value_t = knsock::DEFAULT_CHUNK_SIZE)]
    pub(crate) chunk_size: usize,
    /// Store the file under this name (may contain '/').
    #[arg(long)]
    pub(crate) remote_name: Option<String>,
    /// With `-`: the size of standard input, when known. A stream that ends short of it (its
    /// writer killed) or runs past it stores nothing; without it, the end of input is the end.
    #[arg(long, value_name = "BYTES")]
    pub(crate) size: Option<u64>,
    /// Speak kn-sock 0.3's protocol, to reach a kn-sock 0.3 server (no checksum, no
    /// acknowledgement).
    #[arg(long)]
    pub(crate) legacy: bool,
    #[command(flatten)]
    pub(crate) secure: Secure,
    /// How outcomes are written: text, or json (one object per file, then a summary, on stdout;
    /// fields in docs/operations.md).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How to reach a secure receiver: TLS verification and the client's credential (send-file and
/// fetch-file alike).
#[derive(clap::Args)]
pub(crate) struct Secure {
    /// Connect with TLS 1.3, verifying the server against the system's CAs (or --ca / --pin).
    #[arg(long)]
    pub(crate) tls: bool,
    /// Trust the CA(s) in this PEM file instead of the system's (implies --tls).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Trust exactly the server key with this pin, sha256//BASE64 (implies --tls).
    #[arg(long, value_name = "PIN", conflicts_with = "ca")]
    pub(crate) pin: Option<String>,
    /// The name the server's certificate must carry, when it is not HOST.
    #[arg(long, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// Read the token (NAME:SECRET) from this file; KNSOCK_TOKEN in the environment works too.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// A client certificate chain (PEM) for servers that authenticate by certificate.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct FetchArgs {
    /// The receiver's host.
    pub(crate) host: String,
    /// The receiver's port.
    pub(crate) port: u16,
    /// Names to fetch, as they were sent (files, or directories with -r); relative to what this
    /// client may read there (its confined directory).
    #[arg(required = true, value_name = "REMOTE")]
    pub(crate) remotes: Vec<String>,
    /// The directory to put them in (created if missing): REMOTE's last component and what
    /// lies beneath it land there.
    #[arg(long, value_name = "DIR")]
    pub(crate) to: PathBuf,
    /// Fetch directories with everything beneath them.
    #[arg(short, long)]
    pub(crate) recursive: bool,
    /// Fetch only files whose name matches one of these globs (e.g. '*.log').
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// Leave out files whose name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// Do not fetch files already here unchanged: the same size and modification time (the
    /// quick check), with --checksum the same content digest.
    #[arg(long)]
    pub(crate) skip_unchanged: bool,
    /// With --skip-unchanged, compare content digests instead of size and mtime.
    #[arg(long, requires = "skip_unchanged")]
    pub(crate) checksum: bool,
    /// Keep the data of a file whose fetch was cut short, hidden beside its name, so that a
    /// retry or a later fetch resumes where it ends (rsync's --partial).
    #[arg(long)]
    pub(crate) partial: bool,
    /// Permission bits a fetched file may keep, in octal (default 755).
    #[arg(long, value_name = "OCTAL", default_value = "755", value_parser = octal)]
    pub(crate) mode_mask: u32,
    /// Retry a failed fetch this many times (files already fetched are not fetched again).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) retries: u32,
    /// Seconds before the first retry; doubles with each retry.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub(crate) retry_delay: f64,
    /// Seconds without progress before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) timeout: f64,
    #[command(flatten)]
    pub(crate) secure: Secure,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OverwriteArg {
    Replace,
    Refuse,
    Rename,
}

impl SendArgs {
    /// The receivers (from --to, else the HOST PORT operands) and the paths to send.
    pub(crate) fn receivers_and_paths(&self) -> Result<(Vec<Receiver>, Vec<PathBuf>), String> {
        if !self.to.is_empty() {
            let receivers = self
                .to
                .iter()
                .map(|t| receiver(t))
                .collect::<Result<_, _>>()?;
            return Ok((receivers, self.operands.iter().map(PathBuf::from).collect()));
        }
        let [host, port, paths @ ..] = self.operands.as_slice() else {
            return Err("send-file needs HOST PORT PATH... (or --to HOST:PORT PATH...)".into());
        };
        if paths.is_empty() {
            return Err("send-file needs a PATH after HOST PORT".into());
        }
        let host = host.to_str().ok_or("HOST is not UTF-8")?;
        let port = port
            .to_str()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("invalid port {port:?}: a number from 1 to 65535"))?;
        destination(port)?;
        Ok((
            vec![Receiver::new(host, port)],
            paths.iter().map(PathBuf::from).collect(),
        ))
    }
}

/// `HOST:PORT` or `[ADDR]:PORT`.
fn receiver(s: &str) -> Result<Receiver, String> {
    let bad = || format!("--to {s:?}: expected HOST:PORT");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().map_err(|_| bad())?;
    destination(port)?;
    match host.is_empty() {
        true => Err(bad()),
        false => Ok(Receiver::new(host, port)),
    }
}

/// Port 0 asks the system for any free port when listening; it names no receiver.
fn destination(port: u16) -> Result<(), String> {
    match port {
        0 => Err("port 0 is not a destination: give the port the receiver listens on".into()),
        _ => Ok(()),
    }
}

/// A number of seconds above 0 and at most a day (a timeout).
pub(crate) fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero() && *d <= DAY)
        .ok_or_else(|| {
            format!(
                "{what} must be a positive number of seconds, at most {}",
                DAY.as_secs()
            )
        })
}

/// A number of seconds from 0 to `max`.
pub(crate) fn seconds_up_to(s: f64, what: &str, max: Duration) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| *d <= max)
        .ok_or_else(|| format!("{what} must be 0 to {} seconds", max.as_secs()))
}

/// An octal mode mask such as `755` or `0o750`.
pub(crate) fn octal(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode of at most 7777"))
}

pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);
