//! A refusal of one file, as the sender is told of it (a wire code and a text) and as the error
//! handler sees it.

use crate::error::Error;
use crate::protocol::Code;
use crate::storage::{ObjectErrorKind, StoreError};

/// A refusal of one file: the wire code and the text the sender sees.
pub(crate) struct Refusal(pub(crate) Code, pub(crate) String);

impl Refusal {
    /// The refusal as the error handler sees it.
    pub(crate) fn into_error(self, name: &str) -> Error {
        let Refusal(code, text) = self;
        let kind = code.kind();
        Error::new(kind, format!("refused '{name}': {text}")).with_reason(code as u16, text)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadPath(why) => Refusal(Code::BadName, why),
            StoreError::Exists => Refusal(Code::Exists, "a file with that name exists".into()),
            StoreError::Io(e) => io_refusal(e),
            StoreError::Object(e) => match e.kind {
                ObjectErrorKind::Temporary => Refusal(Code::StoreUnavailable, e.text),
                ObjectErrorKind::Refused => Refusal(Code::StoreRefused, e.text),
                ObjectErrorKind::Exists => Refusal(Code::Exists, e.text),
            },
        }
    }
}

/// A local I/O failure, as the sender is told of it.
pub(crate) fn io_refusal(e: std::io::Error) -> Refusal {
    let err = Error::io("receiver", e);
    Refusal(Code::for_kind(err.kind()), err.message().to_string())
}
