//! A hostile server answering a fetch (docs/protocol.md section 3.4): names that climb out
//! (`../x`, absolute, through a planted symlink), files not asked for or listed twice, a wrong
//! digest, short and long content. Each is refused, nothing is written outside the
//! destination, and nothing partial is left under any name.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;

use common::*;
use knsock::protocol::{self, FetchRequest, Frame, Hello, Offer, ALGO_XXH3_128};
use knsock::{fetch_files, ErrorKind, FetchOptions, FetchReport, FetchStatus};

/// What the hostile server does with a file's content when it is wanted.
#[derive(Clone, Copy, PartialEq)]
enum Content {
    Honest,
    WrongDigest,
    /// Half the bytes, then the connection closes.
    Short,
    /// The bytes and some more, then DONE.
    Long,
}

struct Listed {
    name: &'static str,
    data: Vec<u8>,
    content: Content,
}

fn file(name: &'static str, data: &[u8], content: Content) -> Listed {
    Listed {
        name,
        data: data.to_vec(),
        content,
    }
}

/// A server that lists `files` to whatever is asked and serves their content as told; it
/// returns the request it got and the seqs the client wanted.
fn hostile(files: Vec<Listed>) -> (u16, JoinHandle<(FetchRequest, Vec<u32>)>) {
    let (port, conns) = hostile_conns(vec![files]);
    let first = move || {
        let (req, wants) = conns.join().unwrap().remove(0);
        (req, wants.into_iter().map(|w| w.0).collect())
    };
    (port, std::thread::spawn(first))
}

/// [`hostile`] for one connection after another, each with its own list; each connection's
/// request and wants (seq, offset).
type Served = Vec<(FetchRequest, Vec<(u32, u64)>)>;
fn hostile_conns(conns: Vec<Vec<Listed>>) -> (u16, JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        conns
            .into_iter()
            .map(|files| serve_conn(&listener, files))
            .collect()
    });
    (port, serve)
}

fn serve_conn(listener: &TcpListener, files: Vec<Listed>) -> (FetchRequest, Vec<(u32, u64)>) {
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    let hello = Hello::read_after_first_byte(&mut s).unwrap();
    assert_ne!(hello.caps & protocol::CAP_FETCH, 0);
    let mut out = Vec::new();
    protocol::encode_hello_reply(1, protocol::CAP_FETCH, &mut out);
    s.write_all(&out).unwrap();
    let Some(Frame::Fetch(req)) = Frame::read_from(&mut s).unwrap() else {
        panic!("no FETCH");
    };
    let mut out = Vec::new();
    for (seq, f) in files.iter().enumerate() {
        let offer = Offer {
            mtime_secs: 1_700_000_000,
            ..Offer::new(f.name, f.data.len() as u64)
        };
        let seq = seq as u32;
        Frame::File { seq, offer }.encode(&mut out);
    }
    let count = files.len() as u32;
    Frame::Listed { count }.encode(&mut out);
    s.write_all(&out).unwrap();
    let mut wants = Vec::new();
    while let Some(Frame::Want { seq, offset }) = Frame::read_from(&mut s).unwrap() {
        wants.push((seq, offset));
    }
    for &(seq, offset) in &wants {
        if !serve_one(&mut s, seq, offset as usize, &files[seq as usize]) {
            break;
        }
    }
    (req, wants)
}

/// Sends one file's content from `offset` as told; `false` once the connection is closed.
fn serve_one(s: &mut TcpStream, seq: u32, offset: usize, f: &Listed) -> bool {
    let mut out = Vec::new();
    Frame::Data { seq }.encode(&mut out);
    let mut digest = digest(&f.data);
    match f.content {
        Content::Short => {
            out.extend_from_slice(&f.data[offset..f.data.len() / 2]);
            s.write_all(&out).unwrap();
            let _ = s.shutdown(std::net::Shutdown::Both);
            return false;
        }
        Content::Long => out.extend_from_slice(b"and more bytes than it said"),
        Content::WrongDigest => digest[0] ^= 1,
        Content::Honest => {}
    }
    if f.content != Content::Long {
        out.extend_from_slice(&f.data[offset..]);
    }
    Frame::Done {
        algorithm: ALGO_XXH3_128,
        digest,
    }
    .encode(&mut out);
    s.write_all(&out).is_ok()
}

fn fetch(port: u16, dest: &Path) -> FetchReport {
    let opts = FetchOptions {
        recursive: true,
        ..FetchOptions::default()
    };
    fetch_files("127.0.0.1", port, &["tree"], dest, &opts).unwrap()
}

fn outcome<'a>(r: &'a FetchReport, name: &str) -> &'a knsock::Result<FetchStatus> {
    &r.files.iter().find(|f| f.name == name).unwrap().result
}

#[test]
fn names_that_climb_out_or_were_not_asked_for_are_refused() {
    let (port, server) = hostile(vec![
        file("tree/ok", b"fine", Content::Honest),
        file("../x", b"evil", Content::Honest),
        file("tree/../../x", b"evil", Content::Honest),
        file("/tmp/knsock-fetch-abs", b"evil", Content::Honest),
        file("other/x", b"not asked", Content::Honest),
        file("treehouse/x", b"not asked", Content::Honest),
        file("tree/.knsock-1.tmp", b"reserved", Content::Honest),
        file("tree/a\nb", b"control", Content::Honest),
        file("tree/ok", b"twice", Content::Honest),
    ]);
    let top = tempfile::tempdir().unwrap();
    let dest = top.path().join("dest");
    let r = fetch(port, &dest);
    let (req, wants) = server.join().unwrap();
    assert_eq!(req.names, ["tree"]);
    assert_eq!(wants, [0], "only the honest file is asked for");
    assert_eq!(r.files.len(), 9);
    assert!(matches!(r.files[0].result, Ok(FetchStatus::Fetched)));
    for f in &r.files[1..] {
        let e = f.result.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{}: {e}", f.name);
        assert!(e.message().contains("unacceptable name"), "{e}");
    }
    let msg = |i: usize| {
        r.files[i]
            .result
            .as_ref()
            .unwrap_err()
            .message()
            .to_string()
    };
    assert!(msg(1).contains("'..' path component"), "{}", msg(1));
    assert!(msg(3).contains("absolute path"), "{}", msg(3));
    assert!(msg(4).contains("not asked for"), "{}", msg(4));
    assert!(msg(5).contains("not asked for"), "{}", msg(5));
    assert!(msg(7).contains("a\\nb"), "escaped: {}", msg(7));
    assert!(msg(8).contains("listed twice"), "{}", msg(8));
    assert_eq!(list_tree(top.path()), ["dest", "dest/tree", "dest/tree/ok"]);
    assert!(!Path::new("/tmp/knsock-fetch-abs").exists());
}

#[test]
fn a_name_through_a_planted_symlink_is_refused() {
    let top = tempfile::tempdir().unwrap();
    let (dest, outside) = (top.path().join("dest"), top.path().join("outside"));
    std::fs::create_dir_all(dest.join("tree")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("tree/link")).unwrap();
    let (port, server) = hostile(vec![
        file("tree/link/evil", b"evil", Content::Honest),
        file(
            "tree/link",
            b"replaces the link, not its target",
            Content::Honest,
        ),
    ]);
    let r = fetch(port, &dest);
    server.join().unwrap();
    let e = outcome(&r, "tree/link/evil").as_ref().unwrap_err();
    assert!(e.message().contains("symlink"), "{e}");
    assert!(
        list_tree(&outside).is_empty(),
        "nothing written through the link"
    );
    // The link itself is a name like any other: replaced by the file, never followed.
    assert!(matches!(outcome(&r, "tree/link"), Ok(FetchStatus::Fetched)));
    let link = std::fs::symlink_metadata(dest.join("tree/link")).unwrap();
    assert!(link.is_file());
    assert!(list_tree(&outside).is_empty());
    assert!(temporaries(&dest).is_empty());
}

#[test]
fn a_wrong_digest_or_long_content_keeps_nothing() {
    let (port, server) = hostile(vec![
        file("tree/bad", &random_bytes(100_000, 1), Content::WrongDigest),
        file("tree/good", b"good", Content::Honest),
        file("tree/long", b"0123456789", Content::Long),
        file("tree/after", b"never", Content::Honest),
    ]);
    let top = tempfile::tempdir().unwrap();
    let r = fetch(port, top.path());
    server.join().unwrap();
    let e = outcome(&r, "tree/bad").as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        e.message().contains("checksum mismatch for 'tree/bad'"),
        "{e}"
    );
    assert!(matches!(outcome(&r, "tree/good"), Ok(FetchStatus::Fetched)));
    // Long content desynchronises the stream: that file and the ones after it fail.
    let e = outcome(&r, "tree/long").as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(outcome(&r, "tree/after").is_err());
    assert_eq!(list_tree(top.path()), ["tree", "tree/good"]);
}

#[test]
fn a_short_file_leaves_nothing_partial() {
    let (port, server) = hostile(vec![
        file("tree/one", b"first", Content::Honest),
        file("tree/short", &random_bytes(300_000, 2), Content::Short),
        file("tree/three", b"third", Content::Honest),
    ]);
    let top = tempfile::tempdir().unwrap();
    let r = fetch(port, top.path());
    server.join().unwrap();
    assert!(matches!(outcome(&r, "tree/one"), Ok(FetchStatus::Fetched)));
    let e = outcome(&r, "tree/short").as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.message().contains("after 150000 of 300000 bytes"), "{e}");
    assert!(outcome(&r, "tree/three").is_err());
    assert_eq!(list_tree(top.path()), ["tree", "tree/one"]);
}

/// The other way round: a hostile client asking a real receiver for names that climb out or go
/// through a symlink gets MISSING for each, and a walked directory leaves links out.
#[test]
fn a_receiver_lists_nothing_outside_its_directory() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside").unwrap();
    let srv = TestServer::start(|c| {
        c.allow_fetch(true).allow_anonymous_fetch(true);
    });
    std::fs::create_dir(srv.path("dir")).unwrap();
    std::fs::write(srv.path("dir/f"), b"inside").unwrap();
    std::os::unix::fs::symlink(outside.path(), srv.path("dir/link")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), srv.path("dir/flink")).unwrap();
    std::os::unix::fs::symlink(outside.path(), srv.path("link")).unwrap();
    let (mut c, caps) = RawClient::hello_with(srv.addr(), protocol::CAP_FETCH);
    assert_eq!(caps, protocol::CAP_FETCH);
    let names = [
        "../x",
        "/etc/passwd",
        "link/secret",
        "link",
        "dir/flink",
        "dir",
    ];
    c.send(Frame::Fetch(FetchRequest {
        flags: protocol::FETCH_RECURSIVE,
        names: names.iter().map(|n| n.to_string()).collect(),
        ..FetchRequest::default()
    }));
    let mut got = Vec::new();
    loop {
        match c.read() {
            Frame::Missing { index, code, .. } => got.push(format!("missing {index} {code}")),
            Frame::File { offer, .. } => got.push(format!("file {}", offer.name)),
            Frame::Listed { count } => {
                got.push(format!("listed {count}"));
                break;
            }
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(
        got,
        [
            "missing 0 5",
            "missing 1 5",
            "missing 2 5",
            "missing 3 5",
            "missing 4 5",
            "file dir/f",
            "listed 1"
        ]
    );
    c.send(Frame::Want { seq: 0, offset: 2 });
    c.send(Frame::Bye);
    let mut rest = c.read_to_end();
    let mut r = &rest[..];
    assert_eq!(
        Frame::read_from(&mut r).unwrap(),
        Some(Frame::Data { seq: 0 })
    );
    assert_eq!(&r[..4], b"side");
    r = &r[4..];
    let done = Frame::read_from(&mut r).unwrap();
    assert_eq!(
        done,
        Some(Frame::Done {
            algorithm: ALGO_XXH3_128,
            digest: digest(b"inside")
        })
    );
    assert!(r.is_empty());
    rest.clear();
}

#[test]
fn a_fetch_cut_short_is_retried_and_what_was_fetched_is_not_fetched_again() {
    let big = random_bytes(300_000, 3);
    let (port, server) = hostile_conns(vec![
        vec![
            file("tree/one", b"first", Content::Honest),
            file("tree/big", &big, Content::Short),
            file("tree/three", b"third", Content::Honest),
        ],
        vec![
            file("tree/one", b"first", Content::Honest),
            file("tree/big", &big, Content::Honest),
            file("tree/three", b"third", Content::Honest),
        ],
    ]);
    let top = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        recursive: true,
        retries: 1,
        retry_delay: std::time::Duration::from_millis(1),
        ..FetchOptions::default()
    };
    let r = fetch_files("127.0.0.1", port, &["tree"], top.path(), &opts).unwrap();
    let served = server.join().unwrap();
    assert_eq!(served[0].1, [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(
        served[1].1,
        [(1, 0), (2, 0)],
        "tree/one was fetched by the first attempt"
    );
    assert_eq!(r.attempts, 2);
    assert_eq!(r.failed(), 0, "{:?}", r.first_error());
    assert!(r
        .files
        .iter()
        .all(|f| matches!(f.result, Ok(FetchStatus::Fetched))));
    assert_eq!(std::fs::read(top.path().join("tree/big")).unwrap(), big);
    assert_eq!(
        list_tree(top.path()),
        ["tree", "tree/big", "tree/one", "tree/three"]
    );
}

#[test]
fn with_partial_copies_kept_an_interrupted_fetch_resumes_where_it_ended() {
    let big = random_bytes(300_000, 4);
    let files = |content| vec![file("tree/big", &big, content)];
    let (port, server) = hostile_conns(vec![files(Content::Short), files(Content::Honest)]);
    let top = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        recursive: true,
        partial: true,
        ..FetchOptions::default()
    };
    let e = fetch_files("127.0.0.1", port, &["tree"], top.path(), &opts).unwrap();
    assert!(e.files[0].result.is_err());
    let kept = temporaries(top.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("tree/.knsock-partial-"), "{kept:?}");
    assert!(
        !top.path().join("tree/big").exists(),
        "nothing under the final name"
    );

    let r = fetch_files("127.0.0.1", port, &["tree"], top.path(), &opts).unwrap();
    let served = server.join().unwrap();
    assert_eq!(served[1].1, [(0, 150_000)], "the second fetch resumes");
    assert_eq!(r.failed(), 0, "{:?}", r.first_error());
    assert_eq!(std::fs::read(top.path().join("tree/big")).unwrap(), big);
    assert_eq!(list_tree(top.path()), ["tree", "tree/big"]);
}

#[test]
fn two_names_landing_on_one_local_name_fetch_only_the_first() {
    let (port, server) = hostile(vec![
        file("a/x", b"first", Content::Honest),
        file("b/x", b"second", Content::Honest),
    ]);
    let top = tempfile::tempdir().unwrap();
    let r = fetch_files(
        "127.0.0.1",
        port,
        &["a/x", "b/x"],
        top.path(),
        &FetchOptions::default(),
    )
    .unwrap();
    let (_, wants) = server.join().unwrap();
    assert_eq!(wants, [0]);
    let e = r.files[1].result.as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(
        e.message()
            .contains("'b/x' lands where another file does ('x')"),
        "{e}"
    );
    assert_eq!(std::fs::read(top.path().join("x")).unwrap(), b"first");
}
