//! The native protocol's per-connection state machine (docs/protocol.md sections 1 and 3): the
//! hello, then OFFER → ACCEPT / REJECT / SKIP, content, DONE → a deferred verdict, until BYE.
//! With pipelined decisions (section 3.1) accepted files wait for their DATA or DELTA frame.

use std::collections::VecDeque;
use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, Frame, Offer};
use crate::server::config::FileInfo;
use crate::server::files::budget::Descriptors;
use crate::server::files::commit::{Pending, GROUP_MAX};
use crate::server::files::refusal::Refusal;
use crate::server::files::resume::{Claim, Resume};
use crate::server::files::space::Reservation;
use crate::server::io::runtime::{blocking, blocking_if};
use crate::server::io::wire::Stream;
use crate::server::security::auth::{authenticate, Identity};
use crate::server::session::conn::{verify, Connection};
use crate::server::session::content::{Landed, Storage};
use crate::server::session::decide::{answer, Answer};
use crate::server::session::hello::{answer_hello, first_flight, read_hello};
use crate::server::shared::STOPPING;

/// Serves a native connection whose first byte (the magic's) was read.
pub(crate) async fn serve<S: Stream>(conn: &mut Connection<'_, S>) -> Result<()> {
    // A decoder is taken for the connection's life when zstd is granted (the memory bound).
    let shared = conn.shared;
    let deadline = Instant::now() + shared.config.header_timeout;
    conn.wire.set_deadline(Some(deadline));
    let hello = read_hello(&mut conn.wire).await?;
    let wants_zstd = hello.caps & protocol::CAP_ZSTD != 0 && shared.config.compression;
    let decoder = wants_zstd.then(|| shared.decoder_slot()).flatten();
    let caps = answer_hello(conn, &hello, decoder.is_some()).await?;
    let identity = authenticate(conn).await?;
    // A receiver acting as an earlier release knows no first flight: EARLY is then unexpected.
    first_flight(conn, hello.caps & !shared.config.withheld_caps, caps).await?;
    let mut session = Session {
        conn,
        caps,
        next_seq: 0,
        hash_budget: shared.config.hash_budget,
        identity,
        waiting: VecDeque::new(),
    };
    let result = session.run().await;
    session.release_waiting();
    result
}

/// A DONE frame's size with an XXH3-128 digest.
const DONE_LEN: usize = 5 + 2 + 16;

pub(super) struct Session<'c, 'a, S: Stream> {
    pub(super) conn: &'c mut Connection<'a, S>,
    /// Capabilities both sides have.
    pub(super) caps: u32,
    /// The seq of the next OFFER (docs/protocol.md section 2).
    next_seq: u32,
    /// Bytes of stored files this connection may still have hashed for SKIP answers.
    pub(super) hash_budget: u64,
    /// Who the sender proved to be, if anyone.
    pub(super) identity: Option<Identity>,
    /// Accepted files waiting for their DATA or DELTA frame (pipelined decisions), in order.
    pub(super) waiting: VecDeque<Admitted<'a>>,
}

/// A file admitted: what it holds until its content comes (nothing, unless it resumes kept
/// data) and what its content is checked against.
pub(super) struct Admitted<'a> {
    pub(super) seq: u32,
    pub(super) offer: Offer,
    pub(super) info: FileInfo,
    pub(super) resume: Option<Resume>,
    pub(super) _claim: Option<Claim<'a>>,
    pub(super) storage: Storage,
    pub(super) hasher: Xxh3,
    pub(super) space: Reservation,
    /// The status of the old copy a delta may be built against (BASIS was answered); it is
    /// opened again, and must be the same file, when the delta comes.
    pub(super) basis: Option<rustix::fs::Stat>,
}

impl<'a, S: Stream> Session<'_, 'a, S> {
    async fn run(&mut self) -> Result<()> {
        loop {
            // A verdict is held only while the next frame is already here in full: whatever the
            // peer does next, verified files are committed without waiting for it.
            if !self.frame_ready() {
                self.conn.commit().await?;
                self.conn.flush().await?;
            }
            self.deadline();
            // An accepted file waiting for its content is in flight: cut short, it is lost.
            self.conn.in_file = !self.waiting.is_empty();
            let frame = match self.conn.wire.read_frame().await {
                Ok(Some(f)) => f,
                Ok(None) if self.conn.shared.is_stopping() => {
                    return Err(self.abort(Error::new(ErrorKind::Cancelled, STOPPING)).await)
                }
                Ok(None) if self.waiting.is_empty() => return self.end().await,
                Ok(None) => {
                    let n = self.waiting.len();
                    let e = format!("sender closed the connection with {n} accepted files unsent");
                    return Err(self.abort(Error::protocol(e)).await);
                }
                Err(e) => return Err(self.abort(e).await),
            };
            let step = match frame {
                Frame::Offer(offer) => self.receive_file(offer).await,
                Frame::Data { seq } if self.pipelined() => self.data(seq).await,
                Frame::Delta { seq } if self.caps & protocol::CAP_DELTA != 0 => {
                    self.receive_delta(seq).await
                }
                Frame::Bye => return self.end().await,
                Frame::Fetch(r) if self.next_seq == 0 => return self.fetch(r).await,
                f => Err(Error::protocol(format!(
                    "unexpected frame from sender: {f:?}"
                ))),
            };
            if let Err(e) = step {
                return Err(self.abort(e).await);
            }
        }
    }

    /// The sender is done: the verified files are committed and every answer still queued
    /// goes out.
    async fn end(&mut self) -> Result<()> {
        self.conn.commit().await?;
        self.conn.flush().await
    }

    /// Whether a whole frame is buffered (or readable without waiting).
    fn frame_ready(&mut self) -> bool {
        if !self.conn.wire.ready(5) {
            return false;
        }
        let b = self.conn.wire.buffered();
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        len <= protocol::MAX_FRAME as usize && self.conn.wire.ready(5 + len)
    }

    /// A frame (and an eager file's content) must arrive whole within the header timeout.
    fn deadline(&mut self) {
        let at = Instant::now() + self.conn.shared.config.header_timeout;
        self.conn.wire.set_deadline(Some(at));
    }

    /// Ends the connection on `e`: the verified files are committed first (their verdicts go
    /// out while the peer still listens), then the peer is told why.
    async fn abort(&mut self, e: Error) -> Error {
        let _ = self.conn.commit().await;
        self.conn.fail(e).await
    }

    /// Receives one file. `Err` only when the connection cannot go on; a refused file is
    /// answered with REJECT or FAILED and the connection stays usable. With pipelined
    /// decisions a non-eager file's content waits for its DATA or DELTA frame.
    async fn receive_file(&mut self, mut offer: Offer) -> Result<()> {
        self.one_encoding(&offer)?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // A confined identity's names resolve beneath its directory; the name rules then apply
        // to the whole, so nothing leads out of it.
        if let Some(dir) = self.identity.as_ref().and_then(|i| i.dir.as_ref()) {
            offer.name = format!("{dir}/{}", offer.name);
        }
        if self.is_probe(&offer) {
            return self.probe(&offer).await;
        }
        let mut info = FileInfo::from_offer(&offer, self.conn.peer);
        info.identity = self.identity.as_ref().map(|i| i.name.clone());
        // An eager offer's content is already on its way: no SKIP, no resume, no ACCEPT.
        let eager = self.caps & protocol::CAP_EAGER != 0 && offer.is_eager();
        // Finding out reads the disk and may run validators: off the event loop when it may
        // take long.
        let slow = self.slow_to_find_out(&offer, eager);
        let (found, admitted, basis, resume) =
            blocking_if(slow, || self.find_out(&offer, &info, eager));
        let answer = match (answer(&found), admitted) {
            (Answer::Skip, _) => {
                self.conn.shared.stats.file_skipped();
                return self.answer(Frame::Skip).await;
            }
            // Refused: an eager offer's content is on its way and must be drained first.
            (Answer::DrainThenFail, Some(Err(r))) => {
                return self.drop_eager(r, seq, &offer, &info).await
            }
            (Answer::Reject, Some(Err(r))) => return self.reject_offer(r, &info).await,
            (Answer::Accept { offset }, Some(Ok(parts))) => (Frame::Accept { offset }, parts),
            (Answer::Basis { old_size }, Some(Ok(parts))) => (Frame::Basis { old_size }, parts),
            (Answer::ReceiveNow, Some(Ok(parts))) => (Frame::Accept { offset: 0 }, parts),
            (a, _) => {
                let e = format!("internal error: answer {a:?} without what it needs");
                return Err(Error::new(ErrorKind::Io, e));
            }
        };
        let (answer, (_claim, storage, hasher, offset, space)) = answer;
        if offset > 0 {
            self.conn.shared.stats.resumed();
        }
        let basis = basis.filter(|_| offset == 0).map(|(_, st)| st);
        let adm = Admitted {
            seq,
            offer,
            info,
            resume,
            _claim,
            storage,
            hasher,
            space,
            basis,
        };
        if !eager && self.pipelined() {
            return self.wait_for_content(answer, adm).await;
        }
        self.before_content(&adm.offer, eager).await?;
        if !eager {
            self.conn.send_frame(answer).await?;
        }
        self.content(adm, eager).await
    }

    /// The flags byte exists only with bit 2 (section 3.1): without it an OFFER has one
    /// encoding, and a byte after the encoding is one too many.
    fn one_encoding(&self, offer: &Offer) -> Result<()> {
        match offer.flags != 0 && !self.pipelined() {
            true => Err(Error::protocol(
                "OFFER carries a flags byte, which needs capability bit 2 (pipelined decisions)",
            )),
            false => Ok(()),
        }
    }

    /// Whether pipelined decisions were negotiated.
    pub(super) fn pipelined(&self) -> bool {
        self.caps & protocol::CAP_PIPELINE != 0
    }

    /// An answer to an OFFER: written at once, sent with what follows before the next wait.
    pub(super) async fn answer(&mut self, f: Frame) -> Result<()> {
        match self.pipelined() {
            true => {
                self.conn.queue_frame(f);
                Ok(())
            }
            false => self.conn.send_frame(f).await,
        }
    }

    /// Answers a pipelined offer and keeps the file until its DATA or DELTA frame.
    async fn wait_for_content(&mut self, answer: Frame, adm: Admitted<'a>) -> Result<()> {
        if self.waiting.len() >= protocol::PIPELINE_WINDOW {
            return Err(Error::protocol(format!(
                "more than {} accepted files wait for their content",
                protocol::PIPELINE_WINDOW
            )));
        }
        self.answer(answer).await?;
        self.waiting.push_back(adm);
        Ok(())
    }

    /// The next file waiting for its content, which must be file `seq`.
    pub(super) fn next_waiting(&mut self, seq: u32) -> Result<Admitted<'a>> {
        match self.waiting.front() {
            Some(a) if a.seq == seq => Ok(self.waiting.pop_front().expect("front exists")),
            _ => Err(Error::protocol(format!(
                "content of file {seq}, which does not wait for it"
            ))),
        }
    }

    /// DATA: the content of the next accepted file follows.
    async fn data(&mut self, seq: u32) -> Result<()> {
        let adm = self.next_waiting(seq)?;
        self.before_content(&adm.offer, false).await?;
        self.content(adm, false).await
    }

    /// Keeps the data of resumed files that never got their content, for a later resume.
    fn release_waiting(&mut self) {
        for adm in self.waiting.drain(..) {
            if let (Some(r), Storage::Open(opened)) = (&adm.resume, adm.storage) {
                let _ = opened.1.keep_as(&r.partial);
            }
        }
    }

    /// A file's content and DONE, then its verification.
    async fn content(&mut self, adm: Admitted<'a>, eager: bool) -> Result<()> {
        let Admitted {
            seq,
            mut offer,
            mut info,
            resume,
            storage,
            hasher,
            mut space,
            ..
        } = adm;
        let partial = resume.as_ref().map(|r| r.partial.as_str());
        self.conn.in_file = true;
        let (landed, digest, fds) = self
            .receive_either(&mut offer, &mut info, storage, hasher, partial, &mut space)
            .await?;
        if !eager {
            self.deadline();
        }
        let done = self.read_done().await?;
        self.conn.in_file = false;
        let file = Received {
            seq,
            offer,
            info,
            space,
            fds,
        };
        self.finish(file, landed, done, digest).await
    }

    /// Verifies a received file and joins it to the pending group, or answers FAILED.
    pub(super) async fn finish(
        &mut self,
        file: Received,
        landed: Landed,
        done: (u8, Vec<u8>),
        digest: u128,
    ) -> Result<()> {
        let Received {
            seq,
            offer,
            mut info,
            space,
            fds,
        } = file;
        let mask = self.conn.shared.config.mode_mask;
        let checked = landed.and_then(|(place, temp)| {
            match verify(temp, &offer, done, digest, mask) {
                Ok(temp) => Ok((place, temp)),
                Err(r) => {
                    // An upload under way is aborted before the sender hears FAILED.
                    blocking(|| drop(place));
                    Err(r)
                }
            }
        });
        match checked {
            Ok((place, temp)) => {
                info.path = Some(temp.path().to_path_buf());
                self.conn.pending.push(Pending {
                    seq,
                    temp,
                    place,
                    info,
                    digest: digest.to_be_bytes(),
                    space,
                    fds,
                });
                if self.conn.pending.len() >= GROUP_MAX {
                    self.conn.commit().await?;
                }
                Ok(())
            }
            Err(r) => {
                // Verdicts go out in DONE order: the group before this file first.
                self.conn.commit().await?;
                self.conn.refuse(failed(seq, &r), r, &info).await
            }
        }
    }

    /// Before a file's content: earlier verified files are committed unless the whole content
    /// (and its DONE) is already here, so no verdict waits on the peer. An eager file's content
    /// stays under the header deadline; a large file's content only under the idle timeout.
    pub(super) async fn before_content(&mut self, offer: &Offer, eager: bool) -> Result<()> {
        // Only an eager file (64 KiB at most) may be whole in the buffers.
        let may_hold = eager
            && offer.encoding == protocol::ENCODING_RAW
            && self.conn.wire.ready(offer.size as usize + DONE_LEN);
        if !self.conn.pending.is_empty() && !may_hold {
            self.conn.commit().await?;
        }
        if !may_hold {
            self.conn.flush().await?;
        }
        if !eager {
            self.conn.wire.set_deadline(None);
        }
        Ok(())
    }

    /// The DONE frame that ends a file's content.
    pub(super) async fn read_done(&mut self) -> Result<(u8, Vec<u8>)> {
        match self.conn.wire.read_frame().await? {
            Some(Frame::Done { algorithm, digest }) => Ok((algorithm, digest)),
            other => Err(Error::protocol(format!(
                "expected DONE after the content, got {other:?}"
            ))),
        }
    }

    /// Refuses an eager offer: its content and DONE are read and dropped (at most
    /// `EAGER_MAX` bytes once decoded), then the verdict FAILED goes out in its turn.
    async fn drop_eager(
        &mut self,
        r: Refusal,
        seq: u32,
        offer: &Offer,
        info: &FileInfo,
    ) -> Result<()> {
        self.conn.in_file = true;
        self.conn.drop_content(offer).await?;
        self.read_done().await?;
        self.conn.in_file = false;
        self.conn.commit().await?;
        self.conn.refuse(failed(seq, &r), r, info).await
    }

    async fn reject_offer(&mut self, r: Refusal, info: &FileInfo) -> Result<()> {
        let frame = Frame::Reject {
            code: r.0 as u16,
            text: r.1.clone(),
        };
        self.conn.refuse(frame, r, info).await
    }
}

/// A file whose content has come, before its verification.
pub(super) struct Received {
    pub(super) seq: u32,
    pub(super) offer: Offer,
    pub(super) info: FileInfo,
    pub(super) space: Reservation,
    pub(super) fds: Option<Descriptors>,
}

/// The FAILED verdict of file `seq`.
pub(super) fn failed(seq: u32, r: &Refusal) -> Frame {
    Frame::Failed {
        seq,
        code: r.0 as u16,
        text: r.1.clone(),
    }
}
