//! One connection's protocol: `hello` (the connection's start), `native` (the knsock state
//! machine of docs/protocol.md section 3), `offer` and `decide` (finding out about an offer, then the answer), `content` (where
//! content lands), `delta` (its delta side), `fetch` (serving a
//! fetch), `legacy` (kn-sock 0.3 uploads) and `conn` (what
//! they share: content into a temporary file, commits and verdicts).

pub(super) mod conn;
pub(super) mod content;
pub(super) mod decide;
pub(super) mod delta;
pub(super) mod fetch;
mod fetch_delta;
pub(super) mod hello;
pub(super) mod legacy;
pub(super) mod native;
pub(super) mod offer;
pub(super) mod stream;
