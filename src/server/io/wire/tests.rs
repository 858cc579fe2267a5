//! `Wire`'s rules, tested without a socket: the rate rule, a stopped read, reading in large
//! pieces while bytes flow, the memory a large buffer takes.
use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

impl Stream for tokio::io::Empty {}

/// A server's memory for work of `kib` KiB.
fn memory(kib: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(kib))
}

#[test]
fn a_slow_sender_is_cut_only_while_the_server_is_near_its_cap() {
    let crowded = Arc::new(AtomicBool::new(false));
    let cancel = Arc::new(Cancel::new(Arc::clone(&crowded)));
    let mut w = Wire::new(
        tokio::io::empty(),
        Duration::from_secs(30),
        cancel,
        memory(0),
    );
    assert!(w.pace(10, RATE_WINDOW).is_ok(), "far from the cap");
    crowded.store(true, Ordering::Relaxed);
    assert!(
        w.pace(10, RATE_WINDOW / 2).is_ok(),
        "the window is not over"
    );
    let e = w.pace(10, RATE_WINDOW / 2).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(e.to_string().contains("20 bytes in 30 s"), "{e}");
    let enough = (MIN_RATE * RATE_WINDOW.as_secs()) as usize;
    assert!(w.pace(enough, RATE_WINDOW).is_ok(), "at the minimum rate");
}

impl Stream for tokio::io::DuplexStream {}

/// Once a read fills the buffer, the next ones take up to the largest buffer at once: a
/// stream of small files costs a read for dozens of them, not one for each few.
#[test]
fn a_flowing_stream_is_read_in_large_pieces() {
    use tokio::io::AsyncWriteExt;
    let rt = tokio::runtime::Builder::new_current_thread().build();
    let (ours, mut theirs) = tokio::io::duplex(1 << 20);
    let wrote = rt.unwrap().block_on(theirs.write_all(&[7u8; 400 * 1024]));
    wrote.unwrap();
    let mut w = Wire::new(
        ours,
        Duration::from_secs(30),
        Arc::default(),
        memory(1 << 20),
    );
    assert!(w.ready(5));
    assert_eq!(
        w.buffered().len(),
        READ_MIN,
        "a first read, into the small buffer"
    );
    w.consume(READ_MIN);
    assert!(w.ready(5));
    assert_eq!(
        w.buffered().len(),
        READ_MAX,
        "bytes flow: the largest buffer"
    );
}

#[test]
fn a_read_waiting_for_the_peer_ends_when_the_connection_is_stopped() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cancel = Arc::new(Cancel::default());
    let (ours, _theirs) = tokio::io::duplex(64);
    let mut w = Wire::new(
        ours,
        Duration::from_secs(30),
        Arc::clone(&cancel),
        memory(0),
    );
    rt.block_on(async {
        let stop = async {
            tokio::task::yield_now().await;
            cancel.stop();
        };
        let (ended, ()) = tokio::join!(w.ensure(1), stop);
        assert!(!ended.unwrap(), "the read ends as at the end of the stream");
    });
}

/// Without memory for work a flowing stream is read with the small buffer, and a frame larger
/// than it is not ready until memory comes; the share taken is the large buffer's.
#[test]
fn a_large_buffer_takes_memory_for_work() {
    use tokio::io::AsyncWriteExt;
    let rt = tokio::runtime::Builder::new_current_thread().build();
    let (ours, mut theirs) = tokio::io::duplex(1 << 20);
    let wrote = rt.unwrap().block_on(theirs.write_all(&[7u8; 400 * 1024]));
    wrote.unwrap();
    let work = memory(0);
    let mut w = Wire::new(
        ours,
        Duration::from_secs(30),
        Arc::default(),
        Arc::clone(&work),
    );
    assert!(w.ready(5));
    w.consume(READ_MIN);
    assert!(w.ready(5));
    assert_eq!(
        w.buffered().len(),
        READ_MIN,
        "flowing, but no memory: the small buffer"
    );
    assert!(
        !w.ready(READ_MIN + 100),
        "a larger message waits for memory"
    );
    work.add_permits(BIG_KIB as usize);
    assert!(w.ready(READ_MIN + 100));
    assert_eq!(
        work.available_permits(),
        0,
        "the large buffer holds its share"
    );
}
