//! `kn-sock run-file-server`: the server's configuration from the flags, its directory (the
//! last component created when missing), an S3 bucket, and its output while it runs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use knsock::{Overwrite, ServerConfig};

use crate::args::{seconds, seconds_up_to, OverwriteArg, ServerArgs, DAY};
use crate::events::{self, LogFormat};
use crate::metrics;
use crate::words::explain;
use crate::{shown, usage, Fail};

pub(crate) fn server_command(a: ServerArgs) -> Result<(), Fail> {
    let idle = seconds(a.idle_timeout, "--idle-timeout").map_err(usage)?;
    let resume_ttl = seconds_up_to(a.resume_ttl, "--resume-ttl", 365 * DAY).map_err(usage)?;
    let header = seconds(a.header_timeout, "--header-timeout").map_err(usage)?;
    check_tls(&a)?;
    let mut cfg = ServerConfig::new(&a.dir);
    match a.dir.to_str().filter(|d| d.starts_with("s3://")) {
        Some(url) => s3_sink(&mut cfg, url, &a)?,
        None => make_dir(&a.dir)?,
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
    cfg.allow_fetch(a.allow_fetch)
        .allow_anonymous_fetch(a.allow_anonymous_fetch);
    if a.allow_anonymous_fetch {
        eprintln!("kn-sock: warning: --allow-anonymous-fetch lets anyone who reaches the port read every file in the directory");
    }
    let metrics = a.metrics.as_deref().map(metrics::address).transpose();
    allow_extensions(&mut cfg, a.allow_ext);
    run_server(cfg, metrics.map_err(usage)?, a.log_format)
}

/// The options that only mean something over TLS need --tls-cert or --tls-self-signed (the
/// library says so too, in its own words).
fn check_tls(a: &ServerArgs) -> Result<(), Fail> {
    let given: Vec<&str> = [
        (a.tokens.is_some(), "--tokens"),
        (a.client_ca.is_some(), "--client-ca"),
        (a.allow_plaintext, "--allow-plaintext"),
    ]
    .into_iter()
    .filter_map(|(on, flag)| on.then_some(flag))
    .collect();
    match given.is_empty() || a.tls_cert.is_some() || a.tls_self_signed.is_some() {
        true => Ok(()),
        false => Err(usage(format!(
            "{} {} TLS: add --tls-self-signed DIR, or --tls-cert FILE --tls-key FILE",
            given.join(", "),
            if given.len() == 1 { "needs" } else { "need" }
        ))),
    }
}

/// Creates the server's directory when only its last component is missing (as `mkdir` would,
/// mode 0755 less the umask), and says so; a missing parent is more likely a typo.
fn make_dir(dir: &Path) -> Result<(), Fail> {
    use std::os::unix::fs::DirBuilderExt;
    if std::fs::symlink_metadata(dir).is_ok() {
        return Ok(()); // the library checks it is a directory
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            eprintln!("kn-sock: created the directory {}", shown(dir));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "server directory {}: no such directory, nor its parent (kn-sock creates only the \
             last component)",
            shown(dir)
        )
        .into()),
        Err(e) => Err(format!("cannot create the server directory {}: {e}", shown(dir)).into()),
    }
}

/// Stores into the bucket `url` names, spooling in --spool-dir.
fn s3_sink(cfg: &mut ServerConfig, url: &str, a: &ServerArgs) -> Result<(), Fail> {
    let mut s3 = knsock::S3Config::from_url(url).map_err(|e| usage(explain(e)))?;
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
fn private_spool() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("knsock-spool-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(format!("cannot create the spool {}: {e}", shown(&dir)))
        }
        _ => {}
    }
    let meta =
        std::fs::symlink_metadata(&dir).map_err(|e| format!("spool {}: {e}", shown(&dir)))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "spool {} is not a private directory of this user: give --spool-dir",
            shown(&dir)
        ));
    }
    Ok(dir)
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
) -> Result<(), Fail> {
    let histograms = metrics_at.map(|_| metrics::Histograms::new());
    report_events(&mut cfg, log, histograms.clone());
    let server = Arc::new(cfg.start().map_err(explain)?);
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
