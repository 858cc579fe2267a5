//! The one error type of the Rust API. Its kinds map one-to-one to the C ABI's result codes.

use std::fmt;
use std::io;

/// What went wrong, coarsely: enough for a caller to decide whether to retry, fix its input or
/// give up. Each kind has a fixed C result code (`knsock_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A caller passed something unusable: an empty host, a zero chunk size, a bad name.
    InvalidArgument,
    /// The local file or directory does not exist.
    NotFound,
    /// The connection could not be made (refused, unreachable, name not resolved).
    Connect,
    /// Connecting, or waiting for the peer, took longer than allowed.
    Timeout,
    /// The receiver refused the file; [`Error::peer_reason`] has its reason.
    Rejected,
    /// The peer broke the wire protocol or speaks an unsupported version.
    Protocol,
    /// The content did not match its checksum.
    Integrity,
    /// Not enough space on the receiving side.
    NoSpace,
    /// Any other input/output error.
    Io,
    /// The transfer was cancelled by its owner (a cancel token, a context, `_cancel`).
    Cancelled,
    /// A progress callback asked to stop.
    AbortedByCallback,
    /// Security failed: the server's certificate or pin did not verify, our token or client
    /// certificate was refused or missing, or the two ends disagree on TLS. Not retried.
    Auth,
    /// The receiver's object store failed (unreachable, slowing down: the peer code is 15 and a
    /// retry may succeed) or refused (access denied, no such bucket: peer code 16).
    Store,
    /// The receiver is at its connection cap: retry later. Retried with backoff when retries
    /// are allowed. [`Error::peer_reason`] has its code (17) and text.
    Busy,
}

/// The inner error of an [`io::Error`] that is a failure of authentication (a TLS alert, a
/// certificate that did not verify), so [`Error::io`] gives it [`ErrorKind::Auth`].
#[derive(Debug)]
pub(crate) struct AuthFailure(pub(crate) String);

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthFailure {}

/// The reason a receiver gave when it refused a file: its wire code (docs/protocol.md section 5)
/// and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReason {
    /// The wire code: 1 validator, 2 exists, 3 no space, … 16 store refused, 17 busy.
    pub code: u16,
    /// The receiver's text, escaped for printing.
    pub text: String,
}

/// An error of the knsock API: a kind, a one-line message for people, and, for refusals, the
/// receiver's own reason.
///
/// The message and the peer's reason are always safe to print: whatever came from the network
/// (names, reasons) is escaped by [`crate::printable`] when the error is made, so a log line
/// built from an error cannot be forged.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    peer: Option<PeerReason>,
    #[source]
    source: Option<io::Error>,
}

/// `Result` with knsock's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message` (escaped for printing if it needs to be).
    ///
    /// ```
    /// let e = knsock::Error::new(knsock::ErrorKind::NotFound, "a.txt: no such file or directory");
    /// assert_eq!(e.to_string(), "a.txt: no such file or directory");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: safe(message.into()),
            peer: None,
            source: None,
        }
    }

    /// An [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// An [`ErrorKind::Protocol`] error.
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    /// Wraps an I/O error, choosing the kind from what the OS said (a timeout is a timeout,
    /// ENOSPC is no space), with `context` saying what was being done.
    pub fn io(context: impl fmt::Display, source: io::Error) -> Self {
        let kind = classify_io(&source);
        let message = match kind {
            // The OS says only "resource temporarily unavailable"; a timeout of our own says why.
            ErrorKind::Timeout if source.get_ref().is_none() => {
                format!("{context}: timed out (no progress)")
            }
            _ => format!("{context}: {source}"),
        };
        Error {
            kind,
            message: safe(message),
            peer: None,
            source: Some(source),
        }
    }

    /// The receiver's refusal with its wire code, of the kind that code maps to
    /// (`protocol::peer_error` maps it). A busy receiver did not refuse the file: it asks for
    /// a later try, and the message says so.
    pub(crate) fn from_peer(kind: ErrorKind, code: u16, text: impl Into<String>) -> Self {
        let text = safe(text.into());
        let message = match kind {
            ErrorKind::Busy => format!("receiver busy, retry later: {text}"),
            _ => format!("rejected by receiver: {text}"),
        };
        Error {
            kind,
            message,
            peer: Some(PeerReason { code, text }),
            source: None,
        }
    }

    /// The same error with the reason a receiver gave its sender (a refusal's code and text).
    pub(crate) fn with_reason(mut self, code: u16, text: impl Into<String>) -> Self {
        self.peer = Some(PeerReason {
            code,
            text: safe(text.into()),
        });
        self
    }

    /// The reason the receiver gave (an ERROR frame) for ending the connection under a failure
    /// of ours (a write it broke off), in the message. The error keeps that failure's kind and
    /// carries no peer reason: the receiver explains a lost connection, it does not refuse a
    /// file, so a retry is decided as for any lost connection (a receiver that saw the cut as
    /// its own read error says code 7, which as a refusal would stop the retries).
    pub(crate) fn peer_ended(kind: ErrorKind, text: &str) -> Self {
        Self::new(kind, format!("the receiver ended the connection: {text}"))
    }

    /// What went wrong, coarsely (what to decide a retry on).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message, safe to print (also what `Display` shows).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The receiver's reason when it refused the file, if it did (for a receiver's own error
    /// handler: the code and text it told the sender).
    pub fn peer_reason(&self) -> Option<&PeerReason> {
        self.peer.as_ref()
    }

    /// A copy for another file that failed the same way (the OS error itself is not kept).
    pub fn duplicate(&self) -> Error {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            peer: self.peer.clone(),
            source: None,
        }
    }

    /// Prefixes the message with what was being done, keeping kind and peer reason.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = safe(format!("{context}: {}", self.message));
        self
    }
}

/// `text` made safe to print, without a copy when it already is.
fn safe(text: String) -> String {
    match crate::text::printable(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

fn classify_io(e: &io::Error) -> ErrorKind {
    use io::ErrorKind as K;
    if e.get_ref().is_some_and(|inner| inner.is::<AuthFailure>()) {
        return ErrorKind::Auth;
    }
    match e.kind() {
        K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
        K::NotFound => ErrorKind::NotFound,
        K::StorageFull => ErrorKind::NoSpace,
        K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable => ErrorKind::Connect,
        _ => ErrorKind::Io,
    }
}
