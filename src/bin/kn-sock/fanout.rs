//! `kn-sock send-file --to HOST:PORT --to …`: the same files to several receivers at once, a
//! line per failure and a summary per receiver (or, with `--log-format json`, an event per file
//! and receiver and one summary).

use std::path::PathBuf;

use knsock::{collect_sources, send_files_to_many, Receiver, SendOptions, WalkOptions};

use crate::events::{LogFormat, SendLog};

/// Sends `paths` (walked as `walk` says) to every receiver; `Err` when any receiver was not
/// reached or failed a file.
pub(crate) fn send_to_many(
    receivers: &[Receiver],
    paths: &[PathBuf],
    walk: &WalkOptions,
    mut opts: SendOptions,
    log: LogFormat,
) -> Result<(), String> {
    let mut sources = collect_sources(paths, walk).map_err(|e| e.to_string())?;
    if sources.is_empty() {
        return Err("no files to send".into());
    }
    if let Some(name) = opts.remote_name.take() {
        match sources.as_mut_slice() {
            [one] if !paths[0].is_dir() => one.name = name,
            _ => return Err("--remote-name needs exactly one file".into()),
        }
    }
    let started = std::time::Instant::now();
    let report = send_files_to_many(receivers, &sources, &opts).map_err(|e| e.to_string())?;
    if log == LogFormat::Json {
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
        l.summary(started.elapsed());
    }
    for outcome in report.receivers.iter().filter(|_| log == LogFormat::Text) {
        let r = &outcome.receiver;
        let batch = match &outcome.result {
            Ok(b) => b,
            Err(e) => {
                eprintln!("kn-sock: {r}: {e}");
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
                eprintln!("kn-sock: {r}: {}: {e}", crate::shown(&f.source.path));
            }
        }
        println!(
            "{r}: {} sent, {unchanged} unchanged, {} failed",
            batch.delivered() - unchanged,
            batch.failed()
        );
    }
    match report.failed_receivers() {
        0 => Ok(()),
        n => Err(format!("{n} of {} receivers failed", receivers.len())),
    }
}
