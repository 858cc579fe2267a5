//! One fetching connection (docs/protocol.md section 3.4): the hello, FETCH, the list read and
//! checked whole, the WANTs and BYE, then each wanted file's content landed and verified.

use std::collections::HashSet;
use std::io::Write;

use super::delta;
use super::land::{refused, Dest, Landing};
use super::options::{FetchOptions, FetchStatus, FetchedFile, MissingName};
use super::receive::{next, receive_all, Planned};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{self, check_name, FetchRequest, Frame, Hello, Offer};
use crate::transport::{Transport, Wire};

/// What one connection found: each listed file's outcome (`None`: settled earlier, in a
/// previous attempt) and the requested names that gave nothing.
pub(crate) struct Round {
    pub(crate) files: Vec<FetchedFile>,
    pub(crate) missing: Vec<MissingName>,
    /// Files whose delta found the local old copy changed: the next attempt fetches them whole.
    pub(crate) changed: Vec<String>,
}

/// Runs one fetch on `stream`. `settled` names files an earlier attempt already fetched: left
/// alone when still unchanged here; `whole` files never to fetch as a delta. `Err` when
/// nothing could be listed.
pub(crate) fn run<S: Transport>(
    stream: S,
    remotes: &[String],
    dest: &Dest,
    opts: &FetchOptions,
    (settled, whole): (&HashSet<String>, &HashSet<String>),
) -> Result<Round> {
    let mut wire = Wire::new(stream, 64 * 1024, 64 * 1024, Some(opts.timeout));
    let mut flags = 0;
    if opts.recursive {
        flags |= protocol::FETCH_RECURSIVE;
    }
    if opts.skip_unchanged && opts.checksum {
        flags |= protocol::FETCH_DIGESTS;
    }
    let request = FetchRequest {
        flags,
        names: remotes.to_vec(),
        include: opts.include.clone(),
        exclude: opts.exclude.clone(),
    };
    hello(&mut wire, opts, &request)?;
    let (listed, missing) = read_list(&mut wire, &request)?;
    let mut files = Vec::new();
    let mut wants = Vec::new();
    for (seq, item) in listed.into_iter().enumerate() {
        let (file, plan) = decide(item, dest, opts, settled);
        if let Some(plan) = plan {
            wants.push((seq as u32, files.len(), plan));
        } else if let (Some(f), false) = (&opts.on_file, settled.contains(&file.name)) {
            // A file an earlier attempt fetched was reported then.
            f(&file);
        }
        files.push(file);
    }
    let mut room = delta::ROOM;
    for (seq, _, plan) in &mut wants {
        let offset = plan.resume.as_ref().map_or(0, Landing::written);
        if offset == 0 && plan.resume.is_none() && !whole.contains(&plan.offer.name) {
            plan.basis = delta::basis(dest, &plan.local, &plan.offer, &mut room);
        }
        // Each signature goes out as soon as it is made: the receiver waits for the next
        // frame no longer than its header timeout, and reading a large old copy takes time.
        let _ = match &plan.basis {
            Some(b) => delta::write_want(&mut wire, *seq, b).and_then(|()| wire.flush()),
            None => Frame::Want { seq: *seq, offset }.write_to(&mut wire),
        };
    }
    Frame::Bye
        .write_to(&mut wire)
        .and_then(|()| wire.flush())
        .map_err(|e| Error::io("sending the wants", e))?;
    let changed = receive_all(&mut wire, wants, &mut files, dest, opts);
    Ok(Round {
        files,
        missing,
        changed,
    })
}

/// The hello (with the fetch bit), the token if any and the FETCH, all at once (one round trip
/// less), then the receiver's answers to the first two.
fn hello<S: Transport>(wire: &mut Wire<S>, opts: &FetchOptions, req: &FetchRequest) -> Result<()> {
    let mut out = Vec::with_capacity(16);
    Hello::ours(protocol::CAP_FETCH).encode(&mut out);
    if let Some(token) = &opts.token {
        crate::tls::auth_frame(token)?.encode(&mut out);
    }
    Frame::Fetch(req.clone()).encode(&mut out);
    wire.write_all(&out)
        .and_then(|()| wire.flush())
        .map_err(|e| Error::io("sending the hello and the request", e))?;
    let caps = match protocol::read_hello_reply(wire)? {
        (0, _) => {
            return Err(match Frame::read_from(wire) {
                Ok(Some(Frame::Error { code, text })) => protocol::peer_error(code, text),
                _ => Error::protocol("the receiver refused our protocol version"),
            })
        }
        (v, _) if v != protocol::VERSION_MAX => {
            return Err(Error::protocol(format!(
                "receiver chose unknown version {v}"
            )))
        }
        (_, caps) => caps,
    };
    if opts.token.is_some() {
        match next(wire)? {
            Frame::AuthOk { .. } => {}
            Frame::Error { code, text } => return Err(protocol::peer_error(code, text)),
            f => return Err(Error::protocol(format!("expected AUTH_OK, got {f:?}"))),
        }
    }
    if caps & protocol::CAP_FETCH == 0 {
        return Err(Error::new(
            ErrorKind::Rejected,
            "the receiver does not serve fetches (it needs --allow-fetch)",
        ));
    }
    Ok(())
}

/// One listed file: accepted with its local name, or refused with why.
type Listed = (Offer, std::result::Result<String, Error>);

/// Reads the list up to LISTED, checking each entry: numbered in order, at most the bound, a
/// name the rules accept, asked for, listed once.
fn read_list<S: Transport>(
    wire: &mut Wire<S>,
    req: &FetchRequest,
) -> Result<(Vec<Listed>, Vec<MissingName>)> {
    let (mut listed, mut missing) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    loop {
        match next(wire)? {
            Frame::File { seq, offer } => {
                if seq as usize != listed.len() || seq >= protocol::FETCH_MAX_FILES {
                    return Err(Error::protocol(format!(
                        "the server listed file {seq} where {} was due (at most {})",
                        listed.len(),
                        protocol::FETCH_MAX_FILES
                    )));
                }
                let local = local_name(&offer, req, &mut seen);
                listed.push((offer, local));
            }
            Frame::Missing { index, code, text } => {
                let asked = req.names.get(index as usize).map_or("?", |n| n.as_str());
                let e = protocol::peer_error(code, text);
                missing.push(MissingName {
                    name: asked.to_string(),
                    error: e.context(format!("fetching '{}'", crate::printable(asked))),
                });
            }
            Frame::Listed { count } if count as usize == listed.len() => {
                return Ok((listed, missing))
            }
            Frame::Listed { count } => {
                return Err(Error::protocol(format!(
                    "the server listed {} files but says {count}",
                    listed.len()
                )))
            }
            Frame::Error { code, text } => return Err(protocol::peer_error(code, text)),
            f => {
                return Err(Error::protocol(format!(
                    "expected FILE or LISTED, got {f:?}"
                )))
            }
        }
    }
}

/// The local name of a listed file, or why it is refused: it must pass the name rules, be a
/// requested file or lie beneath a requested directory (with recursion), match the filters,
/// be listed once, and be the only one landing on its local name (`seen` holds both). A requested name's parent is cut off: `a/tree/x` asked as `a/tree`
/// lands as `tree/x`.
fn local_name(
    offer: &Offer,
    req: &FetchRequest,
    seen: &mut HashSet<String>,
) -> std::result::Result<String, Error> {
    let name = offer.name.as_str();
    if let Some(raw) = &offer.raw_name {
        return Err(refused(&crate::printable_bytes(raw), "name is not UTF-8"));
    }
    check_name(name).map_err(|why| refused(name, &why))?;
    let recursive = req.flags & protocol::FETCH_RECURSIVE != 0;
    let asked = req.names.iter().find(|r| {
        name == r.as_str()
            || (recursive
                && name
                    .strip_prefix(r.as_str())
                    .is_some_and(|s| s.starts_with('/')))
    });
    let Some(asked) = asked else {
        return Err(refused(name, "it was not asked for"));
    };
    if !filters_match(req, name) {
        return Err(refused(name, "it does not match the filters"));
    }
    let local = match asked.rfind('/') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    check_name(local).map_err(|why| refused(local, &why))?;
    if !seen.insert(format!("\0{name}")) {
        return Err(refused(name, "it was listed twice"));
    }
    // Names asked from different directories may land on one local name: the first wins, and
    // the others are the request's fault, not the server's (no retry cures them).
    if !seen.insert(local.to_string()) {
        return Err(Error::invalid(format!(
            "'{}' lands where another file does ('{}'): fetch it into another directory",
            crate::printable(name),
            crate::printable(local)
        )));
    }
    Ok(local.to_string())
}

fn filters_match(req: &FetchRequest, name: &str) -> bool {
    let m = glob::MatchOptions {
        require_literal_separator: false,
        ..glob::MatchOptions::new()
    };
    let hit = |g: &String| glob::Pattern::new(g).is_ok_and(|p| p.matches_with(name, m));
    (req.include.is_empty() || req.include.iter().any(hit)) && !req.exclude.iter().any(hit)
}

/// A listed file's entry in the report, and its plan when its content is wanted.
fn decide(
    (offer, local): Listed,
    dest: &Dest,
    opts: &FetchOptions,
    settled: &HashSet<String>,
) -> (FetchedFile, Option<Planned>) {
    let mut file = FetchedFile {
        name: offer.name.clone(),
        path: local.as_ref().ok().map(|l| dest.path_of(l)),
        size: offer.size,
        result: Ok(FetchStatus::Fetched),
        transferred: 0,
        reused: 0,
    };
    let local = match local {
        Ok(l) => l,
        Err(e) => {
            file.result = Err(e);
            return (file, None);
        }
    };
    let skip = opts.skip_unchanged || settled.contains(&offer.name);
    if skip
        && dest.unchanged(
            &local,
            &offer,
            opts.checksum && !settled.contains(&offer.name),
        )
    {
        file.result = Ok(FetchStatus::Unchanged);
        return (file, None);
    }
    let resume = opts
        .partial
        .then(|| dest.claim_partial(&local, &offer))
        .flatten();
    let plan = Planned {
        offer,
        local,
        resume,
        basis: None,
    };
    (file, Some(plan))
}
