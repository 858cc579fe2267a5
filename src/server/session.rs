//! The native protocol's per-connection state machine (docs/protocol.md sections 1 and 3): the
//! hello, then OFFER → ACCEPT / REJECT / SKIP, content, DONE → a deferred verdict, until BYE.

use xxhash_rust::xxh3::Xxh3;

use super::admit::{admit, Resolved};
use super::auth::{authenticate, Identity};
use super::commit::{Pending, GROUP_MAX};
use super::config::FileInfo;
use super::conn::Connection;
use super::refusal::{io_refusal, Refusal};
use super::resume::{claim, Resume};
use crate::error::{Error, Result};
use crate::protocol::{self, Code, Frame, Hello, Offer, ALGO_XXH3_128};
use crate::transport::Transport;

/// Serves a native connection whose first byte (the magic's) was read.
pub(crate) fn serve<S: Transport>(conn: &mut Connection<'_, S>) -> Result<()> {
    let caps = hello(conn)?;
    let identity = authenticate(conn)?;
    let mut session = Session {
        conn,
        caps,
        next_seq: 0,
        identity,
    };
    session.run()
}

/// Reads the hello and answers it: the version and the capabilities both sides have.
fn hello<S: Transport>(conn: &mut Connection<'_, S>) -> Result<u32> {
    let hello = Hello::read_after_first_byte(&mut conn.wire)?;
    let mut out = Vec::with_capacity(64);
    let Some(version) = hello.negotiate() else {
        let text = format!(
            "unsupported protocol versions {}..={}; this receiver speaks {}..={}",
            hello.min_version,
            hello.max_version,
            protocol::VERSION_MIN,
            protocol::VERSION_MAX
        );
        protocol::encode_hello_reply(0, 0, &mut out);
        Frame::Error {
            code: Code::Version as u16,
            text: text.clone(),
        }
        .encode(&mut out);
        let _ = conn.send(&out);
        return Err(Error::protocol(text));
    };
    let mut ours = protocol::CAP_EAGER;
    if conn.shared.config.compression {
        ours |= protocol::CAP_ZSTD;
    }
    let caps = hello.caps & ours;
    protocol::encode_hello_reply(version, caps, &mut out);
    conn.send(&out)?;
    Ok(caps)
}

struct Session<'c, 'a, S: Transport> {
    conn: &'c mut Connection<'a, S>,
    /// Capabilities both sides have.
    caps: u32,
    /// The seq of the next OFFER (docs/protocol.md section 2).
    next_seq: u32,
    /// Who the sender proved to be, if anyone.
    identity: Option<Identity>,
}

impl<S: Transport> Session<'_, '_, S> {
    fn run(&mut self) -> Result<()> {
        loop {
            // Never hold a verdict while waiting for the sender.
            if !self.conn.pending.is_empty() && !self.conn.wire.input_ready() {
                self.conn.commit()?;
            }
            let frame = match Frame::read_from(&mut self.conn.wire) {
                Ok(Some(f)) => f,
                Ok(None) => return self.conn.commit(),
                Err(e) => return Err(self.conn.fail(e)),
            };
            match frame {
                Frame::Offer(offer) => self.receive_file(offer)?,
                Frame::Bye => return self.conn.commit(),
                f => {
                    let e = Error::protocol(format!("unexpected frame from sender: {f:?}"));
                    return Err(self.conn.fail(e));
                }
            }
        }
    }

    /// Receives one file. `Err` only when the connection cannot go on; a refused file is
    /// answered with REJECT or FAILED and the connection stays usable.
    fn receive_file(&mut self, mut offer: Offer) -> Result<()> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // A confined identity's names resolve beneath its directory; the name rules then apply
        // to the whole, so nothing leads out of it.
        if let Some(dir) = self.identity.as_ref().and_then(|i| i.dir.as_ref()) {
            offer.name = format!("{dir}/{}", offer.name);
        }
        let mut info = FileInfo::from_offer(&offer, self.conn.peer);
        info.identity = self.identity.as_ref().map(|i| i.name.clone());
        // An eager offer's content is already on its way: no SKIP, no resume, no ACCEPT.
        let eager = self.caps & protocol::CAP_EAGER != 0 && offer.is_eager();
        let resolved = Resolved::new(&self.conn.shared.root, &offer);
        if !eager && resolved.unchanged(&offer) {
            return self.conn.send_frame(Frame::Skip);
        }
        let resume = match eager {
            true => None,
            false => self.resume_for(&offer),
        };
        let policy = self.conn.policy(self.caps);
        let partial = resume.as_ref().map(|r| r.partial.as_str());
        let admitted = claim(self.conn.shared, self.conn.id, resume.as_ref()).and_then(|claim| {
            let (target, mut temp) = admit(&offer, &info, resolved, &policy, partial)?;
            // A resumed upload: the checksum covers the data already here too.
            let mut hasher = Xxh3::new();
            let offset = temp
                .reread(&mut hasher)
                .and_then(|()| temp.written())
                .map_err(io_refusal)?;
            Ok((claim, target, temp, hasher, offset))
        });
        // Refused: an eager offer's content is on its way and must be drained first.
        let (_claim, target, temp, hasher, offset) = match admitted {
            Ok(t) => t,
            Err(r) if eager => return self.drop_eager(r, seq, &offer, &info),
            Err(r) => return self.reject_offer(r, &info),
        };
        if !eager {
            self.conn.send_frame(Frame::Accept { offset })?;
        }
        self.conn.in_file = true;
        let (temp, digest) = self.conn.read_content(temp, &offer, hasher, partial)?;
        let done = self.read_done()?;
        self.conn.in_file = false;
        let verified = temp.and_then(|mut temp| {
            if done.0 != ALGO_XXH3_128 || done.1 != digest.to_be_bytes() {
                return Err(Refusal(
                    Code::Checksum,
                    format!("checksum mismatch for '{}'", offer.name),
                ));
            }
            temp.set_metadata(offer.mode, offer.mtime_secs, offer.mtime_nanos)
                .map_err(io_refusal)?;
            Ok(temp)
        });
        match verified {
            Ok(temp) => {
                info.path = Some(temp.path().to_path_buf());
                self.conn.pending.push(Pending {
                    seq,
                    temp,
                    target,
                    info,
                });
                if self.conn.pending.len() >= GROUP_MAX {
                    self.conn.commit()?;
                }
                Ok(())
            }
            Err(r) => {
                // Verdicts go out in DONE order: the group before this file first.
                self.conn.commit()?;
                self.conn.refuse(failed(seq, &r), r, &info)
            }
        }
    }

    /// The resume identity of an offer, when resuming is on.
    fn resume_for(&self, offer: &Offer) -> Option<Resume> {
        match self.conn.shared.config.resume_ttl.is_zero() {
            true => None,
            false => Some(Resume::of(
                offer,
                self.conn.peer,
                self.identity.as_ref().map(|i| i.name.as_str()),
            )),
        }
    }

    /// The DONE frame that ends a file's content.
    fn read_done(&mut self) -> Result<(u8, Vec<u8>)> {
        match Frame::read_from(&mut self.conn.wire) {
            Ok(Some(Frame::Done { algorithm, digest })) => Ok((algorithm, digest)),
            Ok(other) => {
                let e = Error::protocol(format!("expected DONE after the content, got {other:?}"));
                Err(self.conn.fail(e))
            }
            Err(e) => Err(self.conn.fail(e)),
        }
    }

    /// Refuses an eager offer: its content and DONE are read and dropped (at most
    /// `EAGER_MAX` bytes once decoded), then the verdict FAILED goes out in its turn.
    fn drop_eager(&mut self, r: Refusal, seq: u32, offer: &Offer, info: &FileInfo) -> Result<()> {
        self.conn.in_file = true;
        let dropped = self.conn.drop_content(offer);
        dropped.map_err(|e| self.conn.fail(e))?;
        self.read_done()?;
        self.conn.in_file = false;
        self.conn.commit()?;
        self.conn.refuse(failed(seq, &r), r, info)
    }

    fn reject_offer(&mut self, r: Refusal, info: &FileInfo) -> Result<()> {
        let frame = Frame::Reject {
            code: r.0 as u16,
            text: r.1.clone(),
        };
        self.conn.refuse(frame, r, info)
    }
}

/// The FAILED verdict of file `seq`.
fn failed(seq: u32, r: &Refusal) -> Frame {
    Frame::Failed {
        seq,
        code: r.0 as u16,
        text: r.1.clone(),
    }
}
