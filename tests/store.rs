//! A store of the embedding program's own (`ServerConfig::object_store`): verified files and
//! streams of unknown size go into it; a store that fails or panics commits nothing, its sender
//! hears why, and the server goes on. A store that cannot list or read (the trait's defaults)
//! has fetches refused with code 20 and a reason.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use common::*;
use knsock::{
    fetch_file, send_file, send_stream, ErrorKind, FetchOptions, ObjectError, ObjectMeta,
    ObjectStore, SendOptions,
};

/// Objects in memory; a key with "boom" fails its put, one with "panic" panics in it.
#[derive(Debug, Default)]
struct Memory(Mutex<HashMap<String, (ObjectMeta, Vec<u8>)>>);

impl ObjectStore for Memory {
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectError> {
        Ok(self.0.lock().unwrap().get(key).map(|(m, _)| m.clone()))
    }
    fn exists(&self, key: &str) -> Result<bool, ObjectError> {
        Ok(self.0.lock().unwrap().contains_key(key))
    }
    fn put(&self, key: &str, file: &File, meta: &ObjectMeta, _: bool) -> Result<(), ObjectError> {
        if key.contains("boom") {
            return Err(ObjectError::refused("the vault is sealed"));
        }
        if key.contains("panic") {
            panic!("the vault exploded");
        }
        let mut data = Vec::new();
        let mut f = file.try_clone().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut data).unwrap();
        assert_eq!(data.len() as u64, meta.size);
        self.0
            .lock()
            .unwrap()
            .insert(key.into(), (meta.clone(), data));
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
    fn url(&self, key: &str) -> String {
        format!("memory:{key}")
    }
}

fn stored(m: &Memory, key: &str) -> Option<Vec<u8>> {
    m.0.lock().unwrap().get(key).map(|(_, d)| d.clone())
}

#[test]
fn files_and_streams_go_into_the_store_and_a_failing_or_panicking_store_commits_nothing() {
    let store = Arc::new(Memory::default());
    let s = Arc::clone(&store);
    let srv = TestServer::start(move |c| {
        c.object_store(s).max_file_size(Some(8 << 20));
    });
    let opts = SendOptions::default();
    let src = tempfile::tempdir().unwrap();
    let data = random_bytes(300_000, 1);
    let p = write_file(src.path(), "f.bin", &data);
    send_file("127.0.0.1", srv.port(), &p, &opts).unwrap();
    assert_eq!(stored(&store, "f.bin").unwrap(), data);
    let streamed = random_bytes(3 << 20, 2);
    send_stream("127.0.0.1", srv.port(), "s.bin", &streamed[..], None, &opts).unwrap();
    assert_eq!(stored(&store, "s.bin").unwrap(), streamed);
    assert_eq!(
        store.0.lock().unwrap()["s.bin"].0.size,
        streamed.len() as u64
    );

    for (name, kind, reason) in [
        ("boom.bin", ErrorKind::Store, "the vault is sealed"),
        (
            "panic.bin",
            ErrorKind::Store,
            "the store panicked in put: the vault exploded",
        ),
    ] {
        let p = write_file(src.path(), name, &data);
        let e = send_file("127.0.0.1", srv.port(), &p, &opts).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.peer_reason().unwrap().text.contains(reason), "{e}");
        assert!(stored(&store, name).is_none());
        let e = send_stream("127.0.0.1", srv.port(), name, &data[..], None, &opts).unwrap_err();
        assert!(e.peer_reason().unwrap().text.contains(reason), "{e}");
    }
    let e = send_stream(
        "127.0.0.1",
        srv.port(),
        "big",
        std::io::repeat(3),
        None,
        &opts,
    )
    .unwrap_err();
    assert_eq!(e.peer_reason().map(|r| r.code), Some(4), "{e}");
    assert!(stored(&store, "big").is_none());
    send_stream("127.0.0.1", srv.port(), "after", &b"still"[..], None, &opts).unwrap();
    assert_eq!(stored(&store, "after").unwrap(), b"still");
    wait_for("the spool to empty", || {
        temporaries(srv.dir.path()).is_empty()
    });
}

#[test]
fn a_store_that_cannot_list_or_read_has_fetches_refused_with_code_20() {
    let store = Arc::new(Memory::default());
    let s = Arc::clone(&store);
    let srv = TestServer::start(move |c| {
        c.object_store(s)
            .allow_fetch(true)
            .allow_anonymous_fetch(true);
    });
    let src = tempfile::tempdir().unwrap();
    let p = write_file(src.path(), "f.bin", b"kept");
    send_file("127.0.0.1", srv.port(), &p, &SendOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = FetchOptions::default();
    let e = fetch_file("127.0.0.1", srv.port(), "f.bin", out.path(), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_eq!(e.peer_reason().map(|r| r.code), Some(20), "{e}");
    assert!(e.message().contains("cannot list or read"), "{e}");
    assert!(list_tree(out.path()).is_empty());
    assert_eq!(stored(&store, "f.bin").unwrap(), b"kept");
}
