//! `kn-sock`: the command-line tool, with kn-sock's command names, on knsock's Rust API.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
#[path = "kn-sock/args.rs"]
mod args;
#[path = "kn-sock/events.rs"]
mod events;
#[path = "kn-sock/fanout.rs"]
mod fanout;
#[path = "kn-sock/http.rs"]
mod http;
#[path = "kn-sock/metrics.rs"]
mod metrics;

use args::{seconds, seconds_up_to, Cli, Command, OverwriteArg, SendArgs, ServerArgs, DAY};
use events::{LogFormat, SendLog};
use knsock::{
    collect_sources, send_file, send_files, Overwrite, SendOptions, SendReport, ServerConfig,
    TlsOptions, WalkOptions,
};

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::SendFile(args) => send_command(args),
        Command::RunFileServer(args) => server_command(args),
        Command::HashToken { name } => hash_token_command(&name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("kn-sock: {}", knsock::printable(&message));
            ExitCode::FAILURE
        }
    }
}

fn send_command(a: SendArgs) -> Result<(), String> {
    let (receivers, paths) = a.receivers_and_paths()?;
    let fan_out = !a.to.is_empty();
    let timeout = seconds(a.timeout, "--timeout")?;
    let retry_delay = seconds_up_to(a.retry_delay, "--retry-delay", Duration::from_secs(3600))?;
    let (tls, token) = (tls_options(&a), token(&a)?);
    let opts = SendOptions {
        show_progress: a.show_progress || (!a.no_progress && std::io::stderr().is_terminal()),
        timeout,
        chunk_size: a.chunk_size,
        remote_name: a.remote_name,
        legacy: a.legacy,
        stop_on_error: a.stop_on_error,
        skip_unchanged: a.skip_unchanged,
        checksum: a.checksum,
        delta: !a.no_delta,
        compress: a.compress,
        retries: a.retries,
        retry_delay,
        tls,
        token,
        ..SendOptions::default()
    };
    let walk = WalkOptions {
        recursive: a.recursive,
        include: a.include,
        exclude: a.exclude,
        follow_symlinks: a.follow_symlinks,
    };
    match (fan_out, receivers.as_slice()) {
        (false, [r]) => send(&r.host, r.port, &paths, &walk, opts, a.log_format),
        _ => fanout::send_to_many(&receivers, &paths, &walk, opts, a.log_format),
    }
}

fn server_command(a: ServerArgs) -> Result<(), String> {
    let idle = seconds(a.idle_timeout, "--idle-timeout")?;
    let resume_ttl = seconds_up_to(a.resume_ttl, "--resume-ttl", 365 * DAY)?;
    let header = seconds(a.header_timeout, "--header-timeout")?;
    let mut cfg = ServerConfig::new(&a.dir);
    if let Some(url) = a.dir.to_str().filter(|d| d.starts_with("s3://")) {
        s3_sink(&mut cfg, url, &a)?;
    }
    cfg.host(a.host)
        .port(a.port)
        .max_file_size(a.max_size)
        .reserve_bytes(a.reserve)
        .max_connections(a.max_connections)
        .idle_timeout(idle)
        .header_timeout(header)
        .max_decoders(a.max_decoders)
        .hash_budget(a.hash_budget)
        .mode_mask(a.mode_mask)
        .resume_ttl(resume_ttl)
        .accept_compression(!a.no_compression)
        .overwrite(match a.overwrite {
            OverwriteArg::Replace => Overwrite::Replace,
            OverwriteArg::Refuse => Overwrite::Refuse,
            OverwriteArg::Rename => Overwrite::Rename,
        });
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        cfg.tls_cert(cert, key);
    }
    if let Some(state) = &a.tls_self_signed {
        cfg.tls_self_signed(state);
    }
    if let Some(tokens) = &a.tokens {
        cfg.tokens_file(tokens);
    }
    if let Some(ca) = &a.client_ca {
        cfg.client_ca(ca);
    }
    cfg.confine_identities(a.confine)
        .allow_plaintext(a.allow_plaintext)
        .allow_legacy(a.allow_legacy);
    if a.allow_plaintext || a.allow_legacy {
        eprintln!("kn-sock: warning: --allow-plaintext/--allow-legacy let unencrypted, unauthenticated senders in");
    }
    let metrics = a.metrics.as_deref().map(metrics::address).transpose()?;
    allow_extensions(&mut cfg, a.allow_ext);
    run_server(cfg, metrics, a.log_format)
}

/// Stores into the bucket `url` names, spooling in --spool-dir.
fn s3_sink(cfg: &mut ServerConfig, url: &str, a: &ServerArgs) -> Result<(), String> {
    let mut s3 = knsock::S3Config::from_url(url).map_err(|e| e.to_string())?;
    s3.endpoint = a.s3_endpoint.clone();
    s3.region = a.s3_region.clone();
    s3.path_style = a.s3_path_style;
    s3.ca_file = a.s3_ca.clone();
    let spool = match &a.spool_dir {
        Some(d) => d.clone(),
        None => private_spool()?,
    };
    cfg.dir(spool).s3(s3);
    Ok(())
}

/// `knsock-spool-UID` in the temporary directory, made private to this user.
fn private_spool() -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("knsock-spool-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(format!("cannot create the spool {}: {e}", dir.display()))
        }
        _ => {}
    }
    let meta =
        std::fs::symlink_metadata(&dir).map_err(|e| format!("spool {}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "spool {} is not a private directory of this user: give --spool-dir",
            dir.display()
        ));
    }
    Ok(dir)
}

/// TLS options when any TLS flag was given.
fn tls_options(a: &SendArgs) -> Option<TlsOptions> {
    let wanted = a.tls || a.ca.is_some() || a.pin.is_some() || a.cert.is_some();
    wanted.then(|| TlsOptions {
        ca_file: a.ca.clone(),
        pin: a.pin.clone(),
        server_name: a.server_name.clone(),
        client_cert: a.cert.clone(),
        client_key: a.key.clone(),
    })
}

/// The token from --token-file, else from KNSOCK_TOKEN (never from the command line, where
/// other users could read it).
fn token(a: &SendArgs) -> Result<Option<String>, String> {
    let text = match &a.token_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the token file {}: {e}", f.display()))?,
        None => match std::env::var("KNSOCK_TOKEN") {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(text.trim().to_string()))
}

fn hash_token_command(name: &str) -> Result<(), String> {
    knsock::split_token(&format!("{name}:x")).map_err(|e| e.to_string())?;
    let mut secret = String::new();
    std::io::stdin()
        .read_line(&mut secret)
        .map_err(|e| format!("cannot read the secret from stdin: {e}"))?;
    let secret = secret.trim_end_matches(['\n', '\r']);
    let hash = knsock::hash_token(secret).map_err(|e| e.to_string())?;
    println!("{name}:{hash}");
    Ok(())
}

/// One plain file: `send_file` (its own name or --remote-name). Otherwise the walk, then one
/// connection for everything (one per file for kn-sock 0.3, which takes one file per connection).
/// Each outcome is printed (or logged as JSON) after the transfer.
fn send(
    host: &str,
    port: u16,
    paths: &[PathBuf],
    walk: &WalkOptions,
    opts: SendOptions,
    log: LogFormat,
) -> Result<(), String> {
    let started = Instant::now();
    let single = paths.len() == 1 && !paths[0].is_dir();
    if !single && opts.remote_name.is_some() {
        return Err("--remote-name needs exactly one file".into());
    }
    let outcomes = match single {
        true => vec![(paths[0].clone(), send_file(host, port, &paths[0], &opts))],
        false => send_walked(host, port, paths, walk, &opts)?,
    };
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    if log == LogFormat::Json {
        let mut l = SendLog::default();
        let receiver = knsock::Receiver::new(host, port).to_string();
        outcomes.iter().for_each(|(p, r)| l.file(&receiver, p, r));
        l.summary(started.elapsed());
    }
    if let (true, [(_, Err(e))]) = (single, outcomes.as_slice()) {
        return Err(e.to_string());
    }
    for (path, result) in outcomes.iter().filter(|_| log == LogFormat::Text) {
        match result {
            Ok(r) => print_delivered(path, r),
            Err(e) => eprintln!("kn-sock: {}: {e}", shown(path)),
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} files failed", outcomes.len())),
    }
}

/// The walk's files over one connection (kn-sock 0.3: one each), with each one's outcome.
fn send_walked(
    host: &str,
    port: u16,
    paths: &[PathBuf],
    walk: &WalkOptions,
    opts: &SendOptions,
) -> Result<Vec<(PathBuf, knsock::Result<SendReport>)>, String> {
    let sources = collect_sources(paths, walk).map_err(|e| e.to_string())?;
    if sources.is_empty() {
        return Err("no files to send".into());
    }
    if opts.legacy {
        let one = |s: knsock::Source| {
            let o = SendOptions {
                remote_name: Some(s.name.clone()),
                ..opts.clone()
            };
            let r = send_file(host, port, &s.path, &o);
            (s.path, r)
        };
        return Ok(sources.into_iter().map(one).collect());
    }
    Ok(send_files(host, port, &sources, opts)
        .map_err(|e| e.to_string())?
        .files
        .into_iter()
        .map(|f| (f.source.path, f.result))
        .collect())
}

/// Refuses, before any data, names whose extension is not in `allow_ext` (when it is not empty).
fn allow_extensions(cfg: &mut ServerConfig, allow_ext: Vec<String>) {
    if allow_ext.is_empty() {
        return;
    }
    let allowed: Vec<String> = allow_ext
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .collect();
    cfg.validate_before(move |info| {
        let ext = info
            .name
            .rsplit('/')
            .next()
            .and_then(|base| base.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase());
        match ext {
            Some(e) if allowed.contains(&e) => Ok(()),
            _ => Err(format!(
                "extension not allowed: {} (allowed: .{})",
                info.name,
                allowed.join(", .")
            )),
        }
    });
}

/// The handlers that tell what the server does: lines for people or JSON events, and the
/// metrics' histograms when there are metrics. A server whose stdout or stderr was closed keeps
/// serving: write errors are ignored.
fn report_events(cfg: &mut ServerConfig, log: LogFormat, histograms: Option<metrics::Histograms>) {
    if let Some(h) = histograms {
        cfg.on_received(move |info| h.observe(info.size, info.offered_at.elapsed()));
    }
    if log == LogFormat::Json {
        cfg.on_received(events::received)
            .on_refused(events::refused)
            .on_error(events::error);
        return;
    }
    cfg.on_received(|info| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "received {} ({} bytes) from {}",
            knsock::printable(&info.name),
            info.size,
            info.peer
        )
        .and_then(|_| out.flush());
    });
    cfg.on_error(|e, peer| {
        let mut err = std::io::stderr().lock();
        let _ = match peer {
            Some(p) => writeln!(err, "kn-sock: {p}: {e}"),
            None => writeln!(err, "kn-sock: {e}"),
        };
    });
}

fn run_server(
    mut cfg: ServerConfig,
    metrics_at: Option<SocketAddr>,
    log: LogFormat,
) -> Result<(), String> {
    let histograms = metrics_at.map(|_| metrics::Histograms::new());
    report_events(&mut cfg, log, histograms.clone());
    let server = Arc::new(cfg.start().map_err(|e| e.to_string())?);
    let metrics_addr = match (metrics_at, histograms) {
        (Some(at), Some(h)) => Some(metrics::serve(at, Arc::clone(&server), h)?),
        _ => None,
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    match log {
        LogFormat::Json => events::start(server.local_addr(), metrics_addr, server.tls_pin()),
        LogFormat::Text => print_started(&server, metrics_addr)?,
    }
    let _ = rx.recv();
    server.stop();
    if log == LogFormat::Json {
        events::stop(&server.stats());
    }
    Ok(())
}

/// "listening on ADDR", then the TLS pin and the metrics address when there are.
fn print_started(server: &knsock::Server, metrics: Option<SocketAddr>) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", server.local_addr())
        .and_then(|_| match server.tls_pin() {
            Some(pin) => writeln!(out, "tls pin {pin}"),
            None => Ok(()),
        })
        .and_then(|_| match metrics {
            Some(m) => writeln!(out, "metrics on http://{m}/metrics"),
            None => Ok(()),
        })
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// "sent PATH as NAME (N bytes…)" or "unchanged PATH".
fn print_delivered(path: &std::path::Path, r: &SendReport) {
    match r.skipped {
        true => println!("unchanged {}", shown(path)),
        false => println!(
            "sent {} as {} ({} bytes{})",
            shown(path),
            knsock::printable(&r.stored_name),
            r.bytes,
            reused(r)
        ),
    }
}

/// A local path as it is printed: escaped like everything from the network (a file name may hold
/// a newline or a terminal escape too).
fn shown(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    knsock::printable_bytes(path.as_os_str().as_bytes()).into_owned()
}

/// ", N reused" when the receiver took part of the file from its own copy (a delta, a resume).
fn reused(r: &SendReport) -> String {
    match r.bytes_reused {
        0 => String::new(),
        n => format!(", {} on the wire, {n} reused", r.bytes_sent),
    }
}
