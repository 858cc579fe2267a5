//! Runs every committed corpus input (`corpus/<target>/`) through its target without libFuzzer,
//! on the stable toolchain: the corpus is a regression suite. Also checks the seeds are current.

use std::fs;
use std::path::Path;

#[test]
fn corpus_replays_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, run) in knsock_fuzz::TARGETS {
        let mut n = 0;
        for entry in fs::read_dir(root.join(target)).unwrap() {
            let path = entry.unwrap().path();
            let data = fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            run(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus for {target}");
        println!("{target}: {n} inputs replayed");
    }
    println!(
        "peak live Rust heap: {} KiB",
        knsock_fuzz::peak_live_bytes() / 1024
    );
}

#[test]
fn seeds_are_committed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let bless = std::env::var_os("KNSOCK_FUZZ_BLESS").is_some();
    for (target, name, bytes) in knsock_fuzz::seeds::seeds() {
        let path = root.join(target).join(format!("seed-{name}"));
        if bless {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
        } else {
            let committed = fs::read(&path).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} is stale: KNSOCK_FUZZ_BLESS=1 cargo test",
                path.display()
            );
        }
    }
}

/// The session seeds are real sessions: the fuzzer starts from inputs that reach the commit.
#[test]
fn session_seeds_store_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/session");
    let served = knsock_fuzz::serve(&fs::read(root.join("seed-one-file")).unwrap());
    assert_eq!(served.stored.iter().collect::<Vec<_>>(), ["a.txt"]);
    let served = knsock_fuzz::serve(&fs::read(root.join("seed-eager-zstd-batch")).unwrap());
    assert_eq!(
        served.stored.iter().collect::<Vec<_>>(),
        ["logs/one.log", "logs/two.log"],
        "{:?}",
        served.replies
    );
    let oks = served
        .replies
        .iter()
        .filter(|f| matches!(f, knsock::protocol::Frame::Ok { .. }));
    assert_eq!(oks.count(), 2, "{:?}", served.replies);
    let served = knsock_fuzz::serve(&fs::read(root.join("seed-legacy-upload")).unwrap());
    assert_eq!(served.stored.iter().collect::<Vec<_>>(), ["notes.txt"]);
    // A first flight: the probe answered CHANGED, the eager file stored.
    let served = knsock_fuzz::serve(&fs::read(root.join("seed-first-flight")).unwrap());
    assert_eq!(served.stored.iter().collect::<Vec<_>>(), ["early.txt"]);
    assert!(
        matches!(
            served.replies.first(),
            Some(knsock::protocol::Frame::Changed)
        ),
        "{:?}",
        served.replies
    );
}

/// The inputs of issue 18 are refused as docs/protocol.md says, and lose nothing else.
#[test]
fn hostile_session_seeds_are_refused() {
    use knsock::protocol::{Code, Frame};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/session");
    let serve = |name: &str| knsock_fuzz::serve(&fs::read(root.join(name)).unwrap());
    let error_code = |replies: &[Frame]| match replies.last() {
        Some(Frame::Error { code, text }) => (*code, text.clone()),
        other => panic!("no ERROR last: {other:?} in {replies:?}"),
    };
    // A delta that builds fewer bytes than offered (one chunk, then none): ERROR 9, the old
    // copy untouched.
    for seed in ["seed-delta-short", "seed-delta-empty"] {
        let served = serve(seed);
        assert!(
            matches!(served.replies[0], Frame::Basis { .. }),
            "{:?}",
            served.replies
        );
        let (code, text) = error_code(&served.replies);
        assert_eq!(code, Code::Protocol as u16, "{text}");
        assert!(text.contains("of the 1048576 bytes offered"), "{text}");
        assert_eq!(served.basis, Some(knsock_fuzz::basis_content()), "{seed}");
        assert!(served.stored.is_empty(), "{:?}", served.stored);
    }
    // A flags byte without capability bit 2: ERROR 9, nothing accepted or stored.
    for seed in ["seed-flags-without-bit2", "seed-defer-without-bit2"] {
        let served = serve(seed);
        assert_eq!(served.replies.len(), 1, "{seed}: {:?}", served.replies);
        let (code, text) = error_code(&served.replies);
        assert_eq!(code, Code::Protocol as u16, "{text}");
        assert!(text.contains("needs capability bit 2"), "{text}");
        assert!(served.stored.is_empty(), "{:?}", served.stored);
    }
    // A name that is not UTF-8: FAILED 5 for that file, the next one stored.
    let served = serve("seed-name-not-utf8");
    assert_eq!(served.stored.iter().collect::<Vec<_>>(), ["good.txt"]);
    match &served.replies[..] {
        [Frame::Failed { seq: 0, code, text }, Frame::Ok { seq: 1, .. }] => {
            assert_eq!(*code, Code::BadName as u16);
            assert!(text.contains("name is not UTF-8"), "{text}");
        }
        r => panic!("{r:?}"),
    }
}
