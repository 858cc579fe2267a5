//! kn-sock 0.3 uploads, told apart from the native protocol by their first byte: `name\n`,
//! `size\n`, exactly `size` raw bytes, then the sender closes.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::protocol::{Offer, MAX_NAME};
use crate::server::config::FileInfo;
use crate::server::files::admit::{admit, open, Resolved};
use crate::server::files::commit::Pending;
use crate::server::files::refusal::{io_refusal, Refusal};
use crate::server::io::runtime::blocking;
use crate::server::io::wire::Stream;
use crate::server::session::conn::Connection;

/// Receives one kn-sock 0.3 upload whose first byte was `first`. Every protection of the native
/// protocol applies (names, limits, validators, temporary file, fsync, rename); that protocol
/// has no checksum and no answer, so the upload counts when exactly `size` bytes arrived, and a
/// refusal or a short upload can only be reported to the error handler.
pub(crate) async fn serve<S: Stream>(conn: &mut Connection<'_, S>, first: u8) -> Result<()> {
    conn.legacy = true;
    // The header comes within the header timeout; the content only under the idle one.
    let deadline = Instant::now() + conn.shared.config.header_timeout;
    conn.wire.set_deadline(Some(deadline));
    let name = line(conn, vec![first], MAX_NAME, "name").await?;
    let size_text = line(conn, Vec::new(), 24, "size").await?;
    conn.wire.set_deadline(None);
    let size = size_text.parse::<u64>().map_err(|_| {
        Error::protocol(format!(
            "kn-sock upload of '{name}': size {size_text:?} is not a number"
        ))
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let offer = Offer {
        mtime_secs: now.as_secs() as i64,
        mtime_nanos: now.subsec_nanos(),
        mode: 0,
        ..Offer::new(name, size)
    };
    let mut info = FileInfo::from_offer(&offer, conn.peer);
    let admitted = blocking(|| {
        let resolved = Resolved::new(&conn.shared.sink, &offer);
        admit(&offer, &info, resolved, &conn.policy(0))
    });
    let (entry, space) = match admitted {
        Ok(t) => t,
        Err(r) => {
            unstored(conn, r, &info, false);
            return Ok(());
        }
    };
    let fds = conn.descriptors().await?;
    let cfg = &conn.shared.config;
    let (mut place, temp) = match blocking(|| open(entry, cfg, offer.size, None)) {
        Ok(t) => t,
        Err(r) => {
            unstored(conn, r, &info, false);
            return Ok(());
        }
    };
    conn.in_file = true;
    let (temp, digest) = conn
        .read_content(temp, &mut place, &offer, Xxh3::new(), None)
        .await?;
    conn.in_file = false;
    let mask = conn.shared.config.mode_mask;
    let temp = temp.and_then(|mut t| {
        t.set_metadata(offer.mode, mask, offer.mtime_secs, offer.mtime_nanos)
            .map_err(io_refusal)?;
        Ok(t)
    });
    let temp = match temp {
        Ok(t) => t,
        Err(r) => {
            unstored(conn, r, &info, true);
            return Ok(());
        }
    };
    info.path = Some(temp.path().to_path_buf());
    conn.pending.push(Pending {
        seq: 0,
        temp,
        place,
        info,
        digest: digest.to_be_bytes(),
        space,
        fds: Some(fds),
    });
    // No one to tell: the outcome reaches the handlers or the error handler.
    let _ = conn.commit().await;
    Ok(())
}

/// One `\n`-terminated line of a kn-sock 0.3 header (its first bytes already in `line`),
/// whitespace-trimmed as kn-sock does, at most `max` bytes.
async fn line<S: Stream>(
    conn: &mut Connection<'_, S>,
    mut line: Vec<u8>,
    max: usize,
    what: &str,
) -> Result<String> {
    let limit = max + 2;
    while line.last() != Some(&b'\n') && line.len() < limit {
        let wire = &mut conn.wire;
        let more = wire
            .ensure(1)
            .await
            .map_err(|e| Error::io(format!("reading a kn-sock {what} line"), e))?;
        if !more {
            break;
        }
        let have = wire.buffered();
        let room = (limit - line.len()).min(have.len());
        let n = have[..room]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(room, |i| i + 1);
        line.extend_from_slice(&have[..n]);
        wire.consume(n);
    }
    if line.pop() != Some(b'\n') {
        return Err(Error::protocol(match line.len() > max {
            true => format!("kn-sock upload: {what} line longer than {max} bytes"),
            false => format!("kn-sock upload: connection closed inside the {what} line"),
        }));
    }
    let text = String::from_utf8(line)
        .map_err(|_| Error::protocol(format!("kn-sock upload: {what} is not UTF-8")))?;
    Ok(text.trim().to_string())
}

/// Counts and reports a refused upload. Nothing is told a kn-sock 0.3 sender: the connection
/// closes unread (`after_data`: its content had come).
fn unstored<S: Stream>(conn: &Connection<'_, S>, r: Refusal, info: &FileInfo, after_data: bool) {
    conn.shared.stats.file_refused(r.0, after_data);
    blocking(|| conn.shared.report_refusal(r, info, after_data));
}
