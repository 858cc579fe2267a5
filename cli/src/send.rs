//! `kn-sock send-file` to one receiver: the options from the flags, the operands walked one by
//! one (a missing one is reported and the rest still sent, as rsync does), and a line per file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use knsock::{
    collect_sources, send_file, send_files, send_stream, SendOptions, SendReport, Source,
    TlsOptions, WalkOptions,
};

use crate::args::{seconds, seconds_up_to, Secure, SendArgs};
use crate::events::{LogFormat, SendLog};
use crate::words::explain;
use crate::{shown, usage, Fail};

pub(crate) fn send_command(a: SendArgs) -> Result<(), Fail> {
    let (receivers, paths) = a.receivers_and_paths().map_err(usage)?;
    let fan_out = !a.to.is_empty();
    let timeout = seconds(a.timeout, "--timeout").map_err(usage)?;
    let retry_delay =
        seconds_up_to(a.retry_delay, "--retry-delay", Duration::from_secs(3600)).map_err(usage)?;
    let (tls, token) = (tls_options(&a.secure), token(&a.secure)?);
    if token.is_some() && tls.is_none() {
        return Err(usage(
            "a token is sent only over TLS: add --tls (or --pin or --ca)",
        ));
    }
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
    let stdin = paths.iter().any(|p| p.as_os_str() == "-");
    if a.size.is_some() && !stdin {
        return Err(usage("--size is for standard input (-) only"));
    }
    let size = a.size;
    match (fan_out, receivers.as_slice()) {
        (false, [r]) if stdin => send_stdin(&r.host, r.port, (&paths, size), opts, a.log_format),
        (true, _) if stdin => Err(usage("standard input (-) goes to one receiver, not --to")),
        (false, [r]) => send(&r.host, r.port, &paths, &walk, opts, a.log_format),
        _ => crate::fanout::send_to_many(&receivers, &paths, &walk, opts, a.log_format),
    }
}

/// `-`: standard input, until its end, as --remote-name (a file named `-` is `./-`), of the
/// size --size states or of one known only at its end. A cut connection stores nothing.
fn send_stdin(
    host: &str,
    port: u16,
    (paths, size): (&[PathBuf], Option<u64>),
    opts: SendOptions,
    log: LogFormat,
) -> Result<(), Fail> {
    if paths.len() != 1 {
        return Err(usage("- (standard input) must be the only PATH"));
    }
    if opts.legacy {
        return Err(usage("kn-sock 0.3 (--legacy) cannot take standard input"));
    }
    let Some(name) = opts.remote_name.clone() else {
        return Err(usage("reading standard input (-) needs --remote-name NAME"));
    };
    let started = Instant::now();
    let stdin = std::io::stdin().lock();
    enlarge_pipe(&stdin);
    let result = send_stream(host, port, &name, stdin, size, &opts);
    let outcomes = vec![(paths[0].clone(), result)];
    if log == LogFormat::Json {
        let mut l = SendLog::default();
        let receiver = knsock::Receiver::new(host, port).to_string();
        outcomes.iter().for_each(|(p, r)| l.file(&receiver, p, r));
        l.summary(started.elapsed());
    }
    match outcomes.into_iter().next() {
        Some((path, Err(e))) => Err(of_file(&path, e)),
        Some((path, Ok(r))) if log == LogFormat::Text => {
            print_delivered(&path, &r);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Standard input that is a pipe gets 1 MiB rather than 64 KiB (or the system's maximum,
/// `/proc/sys/fs/pipe-max-size`, when that is lower): the producer and kn-sock wake each other
/// a sixteenth as often. Best effort: anything else (a file, a terminal) changes nothing.
fn enlarge_pipe(stdin: &impl std::os::fd::AsFd) {
    const WANTED: usize = 1 << 20;
    if rustix::pipe::fcntl_setpipe_size(stdin, WANTED) != Err(rustix::io::Errno::PERM) {
        return;
    }
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size");
    if let Some(max) = max.ok().and_then(|t| t.trim().parse::<usize>().ok()) {
        let _ = rustix::pipe::fcntl_setpipe_size(stdin, max.min(WANTED));
    }
}

/// TLS options when any TLS flag was given.
pub(crate) fn tls_options(a: &Secure) -> Option<TlsOptions> {
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
pub(crate) fn token(a: &Secure) -> Result<Option<String>, String> {
    let text = match &a.token_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the token file {}: {e}", shown(f)))?,
        None => match std::env::var("KNSOCK_TOKEN") {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(text.trim().to_string()))
}

/// The files the operands name, walked one operand at a time: an operand that cannot be walked
/// (missing, a directory without -r) is reported on stderr and counted, and the others still
/// go. A bad pattern fails the whole command.
pub(crate) fn sources(paths: &[PathBuf], walk: &WalkOptions) -> Result<(Vec<Source>, usize), Fail> {
    collect_sources(&[], walk).map_err(|e| usage(explain(e)))?;
    let (mut all, mut missed) = (Vec::new(), 0);
    for p in paths {
        match collect_sources(std::slice::from_ref(p), walk) {
            Ok(found) => all.extend(found),
            Err(e) => {
                missed += 1;
                eprintln!("kn-sock: {}", explain(e));
            }
        }
    }
    Ok((all, missed))
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
) -> Result<(), Fail> {
    let started = Instant::now();
    let single = paths.len() == 1 && !paths[0].is_dir();
    if !single && opts.remote_name.is_some() {
        return Err(usage("--remote-name needs exactly one file"));
    }
    let (outcomes, missed) = match single {
        true => (
            vec![(paths[0].clone(), send_file(host, port, &paths[0], &opts))],
            0,
        ),
        false => send_walked(host, port, paths, walk, &opts)?,
    };
    if log == LogFormat::Json {
        let mut l = SendLog::default();
        let receiver = knsock::Receiver::new(host, port).to_string();
        outcomes.iter().for_each(|(p, r)| l.file(&receiver, p, r));
        l.summary(started.elapsed());
    }
    if let (true, [(path, Err(e))]) = (single, outcomes.as_slice()) {
        return Err(of_file(path, e.duplicate()));
    }
    summary(&outcomes, (missed, paths.len()), log)
}

/// The walk's files over one connection (kn-sock 0.3: one each), with each one's outcome, and
/// how many operands could not be walked.
fn send_walked(
    host: &str,
    port: u16,
    paths: &[PathBuf],
    walk: &WalkOptions,
    opts: &SendOptions,
) -> Result<(Outcomes, usize), Fail> {
    let (sources, missed) = sources(paths, walk)?;
    if sources.is_empty() {
        return match missed {
            0 => Err("no files to send".into()),
            m => Ok((Vec::new(), m)),
        };
    }
    if opts.legacy {
        let one = |s: Source| {
            let o = SendOptions {
                remote_name: Some(s.name.clone()),
                ..opts.clone()
            };
            let r = send_file(host, port, &s.path, &o);
            (s.path, r)
        };
        return Ok((sources.into_iter().map(one).collect(), missed));
    }
    let report = send_files(host, port, &sources, opts).map_err(explain)?;
    let outcomes = report.files.into_iter();
    Ok((
        outcomes.map(|f| (f.source.path, f.result)).collect(),
        missed,
    ))
}

/// Each file sent, with its outcome.
type Outcomes = Vec<(PathBuf, knsock::Result<SendReport>)>;

/// A line per file (stdout when delivered, stderr when not; none with JSON logs); `Err` when any
/// file failed or `missed.0` of the `missed.1` paths given could not be walked.
fn summary(outcomes: &Outcomes, missed: (usize, usize), log: LogFormat) -> Result<(), Fail> {
    for (path, result) in outcomes.iter().filter(|_| log == LogFormat::Text) {
        match result {
            Ok(r) => print_delivered(path, r),
            Err(e) => eprintln!("kn-sock: {}: {}", shown(path), explain(e.duplicate())),
        }
    }
    let failed = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    let files = format!("{failed} of {} files failed", outcomes.len());
    let paths = format!("{} of {} paths could not be sent", missed.0, missed.1);
    match (failed, missed.0) {
        (0, 0) => Ok(()),
        (0, _) => Err(paths.into()),
        (_, 0) => Err(files.into()),
        _ => Err(format!("{files}; {paths}").into()),
    }
}

/// A library error about one file: a refusal names the file (the library's own messages about
/// a local file already do).
fn of_file(path: &Path, e: knsock::Error) -> Fail {
    match e.peer_reason() {
        Some(_) => format!("{}: {}", shown(path), explain(e)).into(),
        None => explain(e).into(),
    }
}

/// "sent PATH as NAME (N bytes…)" or "unchanged PATH".
fn print_delivered(path: &Path, r: &SendReport) {
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

/// ", N reused" when the receiver took part of the file from its own copy (a delta, a resume).
fn reused(r: &SendReport) -> String {
    match r.bytes_reused {
        0 => String::new(),
        n => format!(", {} on the wire, {n} reused", r.bytes_sent),
    }
}
