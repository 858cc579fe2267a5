//! Sending with kn-sock 0.3's protocol, to reach an existing kn-sock 0.3 server: `name\n`,
//! `size\n`, the raw bytes, then wait for the server to close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::content::{stream_content, Content};
use super::options::{SendOptions, SendReport};
use super::progress::{Bar, Progress};
use crate::error::{Error, Result};
use crate::protocol::Offer;
use crate::transport::NoSigpipe;

/// Uploads one file; success means every byte was written and the server then closed the
/// connection, as kn-sock does once it has them all (that protocol has no acknowledgement).
pub(crate) fn send_legacy(
    file: &mut dyn Content,
    stream: &TcpStream,
    offer: Offer,
    opts: &SendOptions,
) -> Result<SendReport> {
    let started = Instant::now();
    let head = format!("{}\n{}\n", offer.name, offer.size);
    let mut out = NoSigpipe(stream);
    out.write_all(head.as_bytes())
        .map_err(|e| Error::io("sending the kn-sock header", e))?;
    let bar = opts.show_progress.then(|| Bar::new(offer.size, 1));
    let progress = Progress::new(opts, None, bar.as_ref());
    stream_content(file, &mut out, &offer, 0, opts.chunk_size, &progress)?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| Error::io("finishing the upload", e))?;
    let mut sink = [0u8; 512];
    loop {
        match out.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("waiting for the kn-sock server to close", e)),
        }
    }
    Ok(SendReport {
        stored_name: offer.name,
        bytes: offer.size,
        elapsed: started.elapsed(),
        resumed_from: 0,
        attempts: 1,
        skipped: false,
        bytes_sent: offer.size,
        bytes_reused: 0,
    })
}
