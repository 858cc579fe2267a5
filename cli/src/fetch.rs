//! `kn-sock fetch-file`: the fetch options from the flags, then a line per file (fetched or
//! unchanged on stdout, failed on stderr) and the exit status.

use std::time::Duration;

use knsock::{fetch_files, FetchOptions, FetchReport, FetchStatus};

use crate::args::{seconds, seconds_up_to, FetchArgs};
use crate::send::{tls_options, token};
use crate::words::explain;
use crate::{shown, usage, Fail};

pub(crate) fn fetch_command(a: FetchArgs) -> Result<(), Fail> {
    let timeout = seconds(a.timeout, "--timeout").map_err(usage)?;
    let retry_delay =
        seconds_up_to(a.retry_delay, "--retry-delay", Duration::from_secs(3600)).map_err(usage)?;
    if a.port == 0 {
        return Err(usage(
            "port 0 is not a destination: give the port the receiver listens on",
        ));
    }
    let (tls, token) = (tls_options(&a.secure), token(&a.secure)?);
    if token.is_some() && tls.is_none() {
        return Err(usage(
            "a token is sent only over TLS: add --tls (or --pin or --ca)",
        ));
    }
    let opts = FetchOptions {
        recursive: a.recursive,
        include: a.include,
        exclude: a.exclude,
        skip_unchanged: a.skip_unchanged,
        checksum: a.checksum,
        partial: a.partial,
        mode_mask: a.mode_mask,
        timeout,
        retries: a.retries,
        retry_delay,
        tls,
        token,
        ..FetchOptions::default()
    };
    let remotes: Vec<&str> = a.remotes.iter().map(String::as_str).collect();
    let report = fetch_files(&a.host, a.port, &remotes, &a.to, &opts).map_err(explain)?;
    summary(&report)
}

/// A line per file and per name that gave nothing; `Err` when anything failed.
fn summary(report: &FetchReport) -> Result<(), Fail> {
    for m in &report.missing {
        eprintln!("kn-sock: {}", explain(m.error.duplicate()));
    }
    for f in &report.files {
        let name = knsock::printable(&f.name);
        let path = f.path.as_deref().map(shown).unwrap_or_default();
        match &f.result {
            Ok(FetchStatus::Fetched) => println!("fetched {name} to {path} ({} bytes)", f.size),
            Ok(FetchStatus::Unchanged) => println!("unchanged {path}"),
            Err(e) => eprintln!("kn-sock: {name}: {}", explain(e.duplicate())),
        }
    }
    let failed = report.files.len() - report.delivered();
    let missing = report.missing.len();
    match (failed, missing) {
        (0, 0) if report.files.is_empty() => Err("nothing to fetch".into()),
        (0, 0) => Ok(()),
        (f, 0) => Err(format!("{f} of {} files failed", report.files.len()).into()),
        (0, m) => Err(format!("{m} requested names gave nothing").into()),
        (f, m) => {
            let n = report.files.len();
            Err(format!("{f} of {n} files failed; {m} requested names gave nothing").into())
        }
    }
}
