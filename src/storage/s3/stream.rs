//! One large object going up while its content arrives: a multipart upload whose parts are
//! read from the spool as soon as each is complete and sent by a few threads of its own. A
//! bounded queue paces the receiver (and so the sender) to the store; the upload is completed
//! only by `finish`, and aborted when dropped before.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};

use super::journal::Note;
use super::multipart::{abort, complete, create, part_size, upload_part};
use super::{local_error, S3Store};
use crate::storage::object::{ObjectError, ObjectErrorKind, ObjectMeta, ObjectStore, Upload};
use crate::sync::lock;

/// Threads sending parts of one object.
const SENDERS: usize = 8;
/// Parts waiting for a sender before `progress` blocks.
const QUEUED: usize = 4;

/// A part to send: its index, first byte and length.
type Part = (usize, u64, u64);

/// What the senders share: each part's ETag, and the first failure.
#[derive(Default)]
struct Outcome {
    etags: Vec<Option<String>>,
    failed: Option<ObjectError>,
}

pub(super) struct S3Upload {
    store: S3Store,
    key: String,
    upload_id: String,
    size: u64,
    part: u64,
    /// The next part to queue, and where it starts.
    next: usize,
    queue: Option<Sender<Part>>,
    senders: Vec<JoinHandle<()>>,
    outcome: Arc<Mutex<Outcome>>,
    _note: Option<Note>,
    /// Complete only if no object is at the key by then.
    if_absent: bool,
    done: bool,
}

impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Upload({}, {})", self.key, self.upload_id)
    }
}

impl S3Upload {
    /// Starts the multipart upload (with `meta` as the object's metadata), notes it in the
    /// journal and starts its senders, which read parts from `file`.
    pub(super) fn start(
        store: S3Store,
        key: &str,
        file: File,
        meta: &ObjectMeta,
        if_absent: bool,
    ) -> Result<S3Upload, ObjectError> {
        let upload_id = create(&store, key, meta)?;
        let note = match &store.journal {
            Some(dir) => match Note::write(dir, &store.describe(), key, &upload_id) {
                Ok(n) => Some(n),
                Err(e) => {
                    abort(&store, key, &upload_id);
                    return Err(local_error(key, &e));
                }
            },
            None => None,
        };
        let part = part_size(meta.size);
        let count = meta.size.div_ceil(part) as usize;
        let outcome = Arc::new(Mutex::new(Outcome {
            etags: vec![None; count],
            failed: None,
        }));
        let (tx, rx) = bounded::<Part>(QUEUED);
        let file = Arc::new(file);
        let spawned: std::io::Result<Vec<JoinHandle<()>>> = (0..SENDERS.min(count))
            .map(|_| {
                let (rx, file, outcome) = (rx.clone(), Arc::clone(&file), Arc::clone(&outcome));
                let (store, key, id) = (store.clone(), key.to_string(), upload_id.clone());
                let thread = std::thread::Builder::new().name("knsock-s3-part".into());
                thread.spawn(move || {
                    for (i, start, len) in rx {
                        if lock(&outcome).failed.is_some() {
                            continue; // drain: the upload is failing
                        }
                        let sent = upload_part(&store, &key, &id, &file, i, start, len);
                        let mut o = lock(&outcome);
                        match sent {
                            Ok(etag) => o.etags[i] = Some(etag),
                            Err(e) => {
                                o.failed.get_or_insert(e);
                            }
                        }
                    }
                })
            })
            .collect();
        let senders = match spawned {
            Ok(s) => s,
            Err(e) => {
                // The threads that started end with the queue; the upload goes.
                drop(tx);
                abort(&store, key, &upload_id);
                return Err(ObjectError::temporary(format!(
                    "storing '{key}': cannot start a thread ({e})"
                )));
            }
        };
        Ok(S3Upload {
            store,
            key: key.to_string(),
            upload_id,
            size: meta.size,
            part,
            next: 0,
            queue: Some(tx),
            senders,
            outcome,
            _note: note,
            if_absent,
            done: false,
        })
    }

    /// The first failure of a sender, if any.
    fn failure(&self) -> Result<(), ObjectError> {
        match &lock(&self.outcome).failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Queues every part that ends at or before `written` (blocking while the queue is full).
    fn queue_until(&mut self, written: u64) -> Result<(), ObjectError> {
        loop {
            let start = self.next as u64 * self.part;
            let end = (start + self.part).min(self.size);
            if start >= self.size || end > written {
                return Ok(());
            }
            self.failure()?;
            let queue = self
                .queue
                .as_ref()
                .expect("queue open until finish or drop");
            if queue.send((self.next, start, end - start)).is_err() {
                return self.failure();
            }
            self.next += 1;
        }
    }

    /// Closes the queue and waits for the senders to finish what they hold.
    fn stop_senders(&mut self) {
        self.queue = None;
        for s in self.senders.drain(..) {
            let _ = s.join();
        }
    }
}

impl Upload for S3Upload {
    fn progress(&mut self, written: u64) -> Result<(), ObjectError> {
        self.queue_until(written)
    }

    fn finish(mut self: Box<Self>) -> Result<(), ObjectError> {
        self.queue_until(self.size)?;
        self.stop_senders();
        self.failure()?;
        let etags: Vec<String> = std::mem::take(&mut lock(&self.outcome).etags)
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| ObjectError {
                kind: ObjectErrorKind::Temporary,
                text: format!("storing '{}': a part went missing", self.key),
            })?;
        complete(
            &self.store,
            &self.key,
            &self.upload_id,
            &etags,
            self.if_absent,
        )?;
        self.done = true;
        Ok(())
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if !self.done {
            // Parts still queued are skipped once a failure is recorded.
            lock(&self.outcome).failed.get_or_insert(ObjectError {
                kind: ObjectErrorKind::Refused,
                text: "abandoned".into(),
            });
            self.stop_senders();
            abort(&self.store, &self.key, &self.upload_id);
        }
    }
}
