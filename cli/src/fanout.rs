//! `kn-sock send-file --to HOST:PORT --to …`: the same files to several receivers at once, a
//! line per failure and a summary per receiver (or, with `--log-format json`, an event per file
//! and receiver and one summary).

use std::path::PathBuf;

use knsock::{send_files_to_many, ManyReport, Receiver, SendOptions, WalkOptions};

use crate::events::{LogFormat, SendLog};
use crate::words::explain;
use crate::{usage, Fail};

/// Sends `paths` (walked as `walk` says) to every receiver; `Err` when any receiver was not
/// reached or failed a file, or a path could not be sent.
pub(crate) fn send_to_many(
    receivers: &[Receiver],
    paths: &[PathBuf],
    walk: &WalkOptions,
    mut opts: SendOptions,
    log: LogFormat,
) -> Result<(), Fail> {
    let (mut sources, missed) = crate::send::sources(paths, walk)?;
    if let Some(name) = opts.remote_name.take() {
        match sources.as_mut_slice() {
            [one] if paths.len() == 1 && !paths[0].is_dir() => one.name = name,
            _ => return Err(usage("--remote-name needs exactly one file")),
        }
    }
    if sources.is_empty() {
        return match missed {
            0 => Err("no files to send".into()),
            m => Err(format!("{m} of {} paths could not be sent", paths.len()).into()),
        };
    }
    let started = std::time::Instant::now();
    let report = send_files_to_many(receivers, &sources, &opts).map_err(explain)?;
    match log {
        LogFormat::Json => log_json(&report, started.elapsed()),
        LogFormat::Text => print_text(&report),
    }
    match (report.failed_receivers(), missed) {
        (0, 0) => Ok(()),
        (0, m) => Err(format!("{m} of {} paths could not be sent", paths.len()).into()),
        (n, _) => Err(format!("{n} of {} receivers failed", receivers.len()).into()),
    }
}

/// An event per file and receiver, then the summary.
fn log_json(report: &ManyReport, took: std::time::Duration) {
    let mut l = SendLog::default();
    for outcome in &report.receivers {
        let r = outcome.receiver.to_string();
        match &outcome.result {
            Ok(b) => b
                .files
                .iter()
                .for_each(|f| l.file(&r, &f.source.path, &f.result)),
            Err(e) => l.unreached(&r, e),
        }
    }
    l.summary(took);
}

/// A line per failure on stderr and a summary line per receiver on stdout.
fn print_text(report: &ManyReport) {
    for outcome in &report.receivers {
        let r = &outcome.receiver;
        let batch = match &outcome.result {
            Ok(b) => b,
            Err(e) => {
                eprintln!("kn-sock: {r}: {}", explain(e.duplicate()));
                println!("{r}: not reached");
                continue;
            }
        };
        let unchanged = batch
            .files
            .iter()
            .filter(|f| f.result.as_ref().is_ok_and(|s| s.skipped))
            .count();
        for f in &batch.files {
            if let Err(e) = &f.result {
                let e = explain(e.duplicate());
                eprintln!("kn-sock: {r}: {}: {e}", crate::shown(&f.source.path));
            }
        }
        println!(
            "{r}: {} sent, {unchanged} unchanged, {} failed",
            batch.delivered() - unchanged,
            batch.failed()
        );
    }
}
