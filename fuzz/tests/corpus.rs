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
}
