//! The event loop: its threads and blocking pool (`runtime`), accepting connections (`accept`)
//! and reaching them from outside (`cancel`),
//! the first byte of each (`dispatch`), the streams (`streams`) and the buffered, deadline-bound
//! wire a session reads and writes (`wire`), the descriptor limit (`limits`), and each
//! connection's callbacks, run in order on the blocking pool (`serial`).

pub(super) mod accept;
pub(super) mod cancel;
pub(super) mod dispatch;
pub(super) mod limits;
pub(super) mod runtime;
pub(super) mod serial;
pub(super) mod streams;
pub(super) mod wire;
