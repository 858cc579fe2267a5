//! Serving a fetch (docs/protocol.md section 3.4): who may fetch, the list (FILE … LISTED), the
//! client's WANTs up to BYE, then each wanted file's DATA, content and DONE.

use std::collections::VecDeque;
use std::io::Read;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Code, FetchRequest, Frame, Offer};
use crate::server::files::listing::{list, Item};
use crate::server::files::objects::{list_objects, ReadAhead, Source, READ_AHEAD, READ_AHEAD_MAX};
use crate::server::io::runtime::{blocking, blocking_if};
use crate::server::io::wire::Stream;
use crate::server::security::auth::Identity;
use crate::server::session::conn::Connection;
use crate::server::session::fetch_delta::{read_signature, send_delta, Sig, Signatures};
use crate::server::session::native::Session;
use crate::storage::Sink;

/// Bytes read from a file and written out per step.
const CHUNK: usize = 256 * 1024;
/// Queued list frames are sent once they reach this many bytes.
const LIST_FLUSH: usize = 64 * 1024;

impl<S: Stream> Session<'_, '_, S> {
    /// A FETCH: served, then the connection ends.
    pub(super) async fn fetch(&mut self, r: FetchRequest) -> Result<()> {
        serve(self.conn, self.caps, self.identity.as_ref(), r).await
    }
}

/// Serves the connection's one FETCH, then ends it. `Err` when the connection failed (the
/// client was told why).
pub(crate) async fn serve<S: Stream>(
    conn: &mut Connection<'_, S>,
    caps: u32,
    identity: Option<&Identity>,
    req: FetchRequest,
) -> Result<()> {
    if caps & protocol::CAP_FETCH == 0 {
        let e = Error::protocol("FETCH without capability bit 5 (fetch)");
        return Err(conn.fail(e).await);
    }
    let base = match who_may_fetch(conn, identity) {
        Ok(base) => base,
        Err(why) => return Err(refuse(conn, why).await),
    };
    let shared = conn.shared;
    let source = match &shared.sink {
        Sink::Dir(root) => Source::Dir(root),
        Sink::Objects { store, .. } if store.readable() => Source::Objects(store.as_ref()),
        Sink::Objects { store, .. } => {
            let why = format!(
                "this receiver stores in an object store ({}) that cannot list or read its \
                 objects",
                store.describe()
            );
            return Err(refuse(conn, why).await);
        }
    };
    let listed = blocking(|| match source {
        Source::Dir(root) => list(root, base.as_deref(), &req),
        Source::Objects(store) => list_objects(store, base.as_deref(), &req),
    });
    let listed = match listed {
        Ok(items) => items,
        Err(why) => return Err(conn.fail(Error::invalid(why)).await),
    };
    match exchange(conn, source, &req, listed).await {
        Ok(()) => {
            let _ = conn.wire.finish().await;
            Ok(())
        }
        Err(e) => Err(conn.fail(e).await),
    }
}

/// The directory the client may read beneath (`None`: the whole directory), or why it may not
/// fetch at all.
fn who_may_fetch<S: Stream>(
    conn: &Connection<'_, S>,
    identity: Option<&Identity>,
) -> std::result::Result<Option<String>, String> {
    let sec = &conn.shared.config.security;
    match identity {
        _ if !sec.allow_fetch => Err("this receiver does not serve fetches".into()),
        Some(id) => Ok(id.dir.clone()),
        None if sec.allow_anonymous_fetch => Ok(None),
        None => Err(
            "this receiver serves fetches only to authenticated clients \
                     (a token or a client certificate, over TLS)"
                .into(),
        ),
    }
}

/// Answers ERROR 20 and ends the connection.
async fn refuse<S: Stream>(conn: &mut Connection<'_, S>, why: String) -> Error {
    let text = format!("fetch refused: {why}");
    conn.queue_frame(Frame::Error {
        code: Code::FetchRefused as u16,
        text: text.clone(),
    });
    let _ = conn.flush().await;
    let _ = conn.wire.finish().await;
    Error::from_peer(ErrorKind::Auth, Code::FetchRefused as u16, text)
}

/// The list, the wants, the content.
async fn exchange<S: Stream>(
    conn: &mut Connection<'_, S>,
    source: Source<'_>,
    req: &FetchRequest,
    items: Vec<Item>,
) -> Result<()> {
    let digests = req.flags & protocol::FETCH_DIGESTS != 0;
    let mut files: Vec<(Offer, String)> = Vec::new();
    let mut out = Vec::with_capacity(LIST_FLUSH + 8192);
    for item in items {
        match item {
            Item::Missing(index, code, text) => Frame::Missing {
                index,
                code: code as u16,
                text,
            }
            .encode(&mut out),
            Item::File(mut offer, full) => {
                if digests && offer.digest.is_empty() {
                    offer.digest = blocking(|| digest_of(source, &full, &offer));
                }
                let seq = files.len() as u32;
                let file = Frame::File { seq, offer };
                file.encode(&mut out);
                if let Frame::File { offer, .. } = file {
                    files.push((offer, full));
                }
            }
        }
        if out.len() >= LIST_FLUSH {
            conn.send(&std::mem::take(&mut out)).await?;
        }
    }
    Frame::Listed {
        count: files.len() as u32,
    }
    .encode(&mut out);
    conn.send(&out).await?;
    let mut sigs = Signatures::default();
    let mut wants = read_wants(conn, &files, &mut sigs).await?;
    let mut queued = 0u64;
    let mut ahead = Ahead::default();
    for at in 0..wants.len() {
        let (seq, offset) = (wants[at].0, wants[at].1);
        let (offer, full) = &files[seq as usize];
        match wants[at].2.take() {
            Some(sig) => send_delta(conn, source, seq, offer, full, sig).await?,
            None => {
                if ahead.used_up(source) && queued > 0 {
                    // What is queued goes out before the store is waited on.
                    conn.flush().await?;
                    queued = 0;
                }
                ahead.read(conn, source, &files, &wants[at..]);
                let read = ahead.take(seq);
                send_one(conn, source, seq, offer, full, (offset, read)).await?
            }
        }
        // Small files go out together, a chunk's worth at a time.
        queued += offer.size - offset;
        if queued >= CHUNK as u64 {
            conn.flush().await?;
            queued = 0;
        }
    }
    Ok(())
}

/// Wanted files read ahead from an object store, in the wants' order, with the work memory
/// their content holds.
#[derive(Default)]
struct Ahead {
    files: VecDeque<(u32, ReadAhead)>,
    _memory: Option<OwnedSemaphorePermit>,
}

impl Ahead {
    /// Once what was read ahead is used up: reads the run of small objects `wants` starts
    /// with, all at once, when it holds two or more and the work memory has room for them now.
    /// It never waits for that memory (a connection holding a delta's signatures must not
    /// wait for more): without it the files are read one by one as their turn comes.
    fn read<S: Stream>(
        &mut self,
        conn: &Connection<'_, S>,
        source: Source<'_>,
        files: &[(Offer, String)],
        wants: &[Want],
    ) {
        if !self.used_up(source) {
            return;
        }
        self._memory = None;
        let run: Vec<(u32, &(Offer, String))> = wants
            .iter()
            .take_while(|w| w.2.is_none())
            .map(|w| (w.0, &files[w.0 as usize]))
            .take_while(|(_, (offer, _))| offer.size <= READ_AHEAD_MAX)
            .take(READ_AHEAD)
            .collect();
        let bytes = run.iter().map(|(_, (offer, _))| offer.size).sum();
        if run.len() < 2 {
            return;
        }
        let Some(memory) = conn.shared.budget.try_work_memory(bytes) else {
            return;
        };
        let wanted = run
            .iter()
            .map(|(_, (o, full))| (full.as_str(), o))
            .collect();
        let read = blocking(|| source.read_whole(wanted));
        self.files = run.iter().map(|(seq, _)| *seq).zip(read).collect();
        self._memory = Some(memory);
    }

    /// Whether the next files come from a store with nothing read ahead for them: the next
    /// one waits on the store.
    fn used_up(&self, source: Source<'_>) -> bool {
        self.files.is_empty() && matches!(source, Source::Objects(_))
    }

    /// What was read ahead for file `seq`, if it was.
    fn take(&mut self, seq: u32) -> Option<ReadAhead> {
        match self.files.front() {
            Some((s, _)) if *s == seq => self.files.pop_front().map(|(_, read)| read),
            _ => None,
        }
    }
}

/// The XXH3-128 of a listed file, for a client comparing checksums; empty when it cannot be
/// read as listed (its WANT will then be answered FAILED).
fn digest_of(source: Source<'_>, full: &str, offer: &Offer) -> Vec<u8> {
    match source.reopen(full, offer) {
        Ok(mut f) => {
            crate::hash::digest_exact(&mut f, offer.size).map_or(Vec::new(), |d| d.to_vec())
        }
        Err(_) => Vec::new(),
    }
}

/// A wanted file: its `seq`, the offset its content starts at, and the client's signature
/// when it wants a delta.
type Want = (u32, u64, Option<Sig>);

/// Reads WANT frames (and DELTA frames with their signatures) up to BYE: each a listed file, in
/// increasing order, its offset within the file. A client that closes instead wants nothing
/// more.
async fn read_wants<S: Stream>(
    conn: &mut Connection<'_, S>,
    files: &[(Offer, String)],
    sigs: &mut Signatures,
) -> Result<Vec<Want>> {
    let mut wants: Vec<Want> = Vec::new();
    loop {
        let at = Instant::now() + conn.shared.config.header_timeout;
        conn.wire.set_deadline(Some(at));
        let frame = match conn.wire.read_frame().await? {
            Some(Frame::Delta { seq }) => Some((seq, 0, true)),
            Some(Frame::Want { seq, offset }) => Some((seq, offset, false)),
            Some(Frame::Bye) => None,
            None => return Ok(Vec::new()),
            Some(f) => return Err(Error::protocol(format!("expected WANT or BYE, got {f:?}"))),
        };
        let Some((seq, offset, delta)) = frame else {
            break;
        };
        let next = wants.last().map_or(0, |w| w.0 + 1);
        let Some((offer, _)) = files.get(seq as usize).filter(|_| seq >= next) else {
            return Err(Error::protocol(format!(
                "WANT of file {seq}: not listed, or out of order"
            )));
        };
        if offset > offer.size {
            return Err(Error::protocol(format!(
                "WANT of file {seq} from {offset}, past its {} bytes",
                offer.size
            )));
        }
        let sig = match delta {
            true => Some(read_signature(conn, sigs).await?),
            false => None,
        };
        wants.push((seq, offset, sig));
    }
    conn.wire.set_deadline(None);
    Ok(wants)
}

/// One wanted file: DATA, its content from `offset`, DONE with the digest of the whole; or
/// FAILED when it is no longer the file that was listed (code 22) or the store failed to give
/// it (15, 16). Its content is `read` when it was read ahead, else opened here.
async fn send_one<S: Stream>(
    conn: &mut Connection<'_, S>,
    source: Source<'_>,
    seq: u32,
    offer: &Offer,
    full: &str,
    (offset, read): (u64, Option<ReadAhead>),
) -> Result<()> {
    let (large, mut file): (bool, Box<dyn Read + Send>) = match read {
        Some(Ok(bytes)) => (false, Box::new(std::io::Cursor::new(bytes))),
        Some(Err(why)) => {
            conn.queue_failed(seq, why);
            return Ok(());
        }
        None => {
            let large = source.slow(offer);
            match conn.reopen_or_fail(&source, seq, offer, full, large) {
                Some(file) => (large, file),
                None => return Ok(()),
            }
        }
    };
    conn.queue_frame(Frame::Data { seq });
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; CHUNK.min(offer.size.max(1) as usize)];
    let mut done = 0u64;
    let name = crate::printable(&offer.name).into_owned();
    while done < offer.size {
        let want = buf.len().min((offer.size - done) as usize);
        let read = blocking_if(large, || file.read_exact(&mut buf[..want]));
        // A file cut short under us cannot be sent in full: the connection ends.
        read.map_err(|e| Error::io(format!("reading '{name}'"), e))?;
        hasher.update(&buf[..want]);
        if done + want as u64 > offset {
            let from = offset.saturating_sub(done) as usize;
            conn.wire.queue(&buf[from..want]);
            if large {
                conn.flush().await?;
            }
        }
        done += want as u64;
    }
    conn.queue_frame(Frame::Done {
        algorithm: protocol::ALGO_XXH3_128,
        digest: hasher.digest128().to_be_bytes().to_vec(),
    });
    if large {
        conn.flush().await?;
    }
    Ok(())
}
