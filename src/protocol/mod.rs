//! The knsock wire protocol, version 1, exactly as `docs/protocol.md` writes it down: the
//! constants, codes, OFFER and name rules (`types`), the frames (`frame`) and the hello
//! (`hello`).

mod cursor;
pub mod delta;
pub(crate) mod delta_out;
mod frame;
mod frame_delta;
mod frame_fetch;
mod hello;
mod types;

pub(crate) use frame::eof_is_protocol;
pub use frame::Frame;
pub use frame_delta::SIG_PER_FRAME;
pub use hello::{encode_hello_reply, read_hello_reply, Hello};
pub use types::*;
