//! The event loop: its threads and blocking pool (`runtime`), accepting connections (`accept`)
//! and reaching them from outside (`cancel`),
//! the first byte of each (`dispatch`), the streams (`streams`) and the buffered, deadline-bound
//! wire a session reads and writes (`wire`), and the descriptor limit (`limits`).

pub(super) mod accept;
pub(super) mod cancel;
pub(super) mod dispatch;
pub(super) mod limits;
pub(super) mod runtime;
pub(super) mod streams;
pub(super) mod wire;
