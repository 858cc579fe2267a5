//! Receivers as processes on one bucket: a receiver killed mid-upload leaves no object, and its
//! restart aborts the upload it left; two receivers on the same bucket and prefix, fed by
//! several senders at once, store every file exactly once.
#![cfg(feature = "s3")]

mod common;

use std::path::Path;

use common::s3::{store_env, TestBucket};
use common::*;
use knsock::{send_file, send_files, SendOptions, Source};

/// A receiver storing into `s3://BUCKET/PREFIX`, in a process of its own, killed when dropped.
fn start_receiver(bucket: &TestBucket, prefix: &str, spool: &Path) -> ServerProcess {
    ServerProcess::start_s3(&bucket.url(prefix), spool, store_env)
}

#[test]
fn a_receiver_killed_mid_upload_leaves_no_object_and_its_restart_aborts_the_upload() {
    let bucket = TestBucket::new("killed");
    let spool = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(160 << 20, 9);
    let p = write_file(src.path(), "big.bin", &data);
    let receiver = start_receiver(&bucket, "k", spool.path());
    let port = receiver.port;
    let sender =
        std::thread::spawn(move || send_file("127.0.0.1", port, &p, &SendOptions::default()));
    // The content has arrived and its multipart upload is under way: kill the receiver then.
    wait_for("the upload to start", || !bucket.uploads().is_empty());
    receiver.kill9();
    assert!(sender.join().unwrap().is_err(), "the sender was told OK");
    assert_eq!(bucket.keys(), Vec::<String>::new());
    assert_eq!(bucket.uploads(), vec!["k/big.bin"]);
    // The note of another bucket's receiver that shares the spool, dead too: not this one's
    // to abort or remove.
    let foreign = spool.path().join(".knsock-upload-00000000000000ff");
    std::fs::write(
        &foreign,
        "s3://elsewhere/x at http://127.0.0.1:1/
x/y
id
",
    )
    .unwrap();
    // Started again on the same spool, it aborts the upload it had noted, and takes the file.
    let receiver = start_receiver(&bucket, "k", spool.path());
    assert_eq!(bucket.uploads(), Vec::<String>::new());
    assert!(foreign.exists(), "another store's note was removed");
    std::fs::remove_file(&foreign).unwrap();
    assert_eq!(bucket.keys(), Vec::<String>::new());
    let p = src.path().join("big.bin");
    send_file("127.0.0.1", receiver.port, &p, &SendOptions::default()).unwrap();
    assert!(bucket.get("k/big.bin").unwrap() == data);
    assert_eq!(list_tree(spool.path()), Vec::<String>::new());
}

#[test]
fn two_receivers_on_one_bucket_store_every_file_of_four_senders_exactly_once() {
    let bucket = TestBucket::new("two-receivers");
    let (spool_a, spool_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_receiver(&bucket, "shared", spool_a.path());
    let b = start_receiver(&bucket, "shared", spool_b.path());
    let src = tempfile::tempdir().unwrap();
    let sources: Vec<Source> = (0..400u64)
        .map(|i| {
            let name = format!("host{}/log{i:03}.txt", i % 4);
            std::fs::create_dir_all(src.path().join(format!("host{}", i % 4))).unwrap();
            let size = 1000 + (i as usize * 37) % 9000;
            let path = write_file(src.path(), &name, &random_bytes(size, i));
            Source {
                path,
                name,
                size: size as u64,
            }
        })
        .collect();
    // Four senders, each with its quarter, split across both receivers.
    std::thread::scope(|s| {
        for sender in 0..4 {
            let mine: Vec<Source> = sources.iter().skip(sender).step_by(4).cloned().collect();
            let (ports, sources) = ([a.port, b.port], mine);
            s.spawn(move || {
                for (half, port) in ports.iter().enumerate() {
                    let part: Vec<Source> = sources.iter().skip(half).step_by(2).cloned().collect();
                    let report =
                        send_files("127.0.0.1", *port, &part, &SendOptions::default()).unwrap();
                    assert_eq!(report.failed(), 0, "{:?}", report.first_error());
                }
            });
        }
    });
    let keys = bucket.keys();
    let mut want: Vec<String> = sources
        .iter()
        .map(|s| format!("shared/{}", s.name))
        .collect();
    want.sort();
    assert_eq!(keys, want, "every file exactly once");
    for (i, s) in sources.iter().enumerate() {
        let got = bucket.get(&format!("shared/{}", s.name)).unwrap();
        assert!(got == random_bytes(s.size as usize, i as u64), "{}", s.name);
    }
    assert!(bucket.uploads().is_empty());
}
