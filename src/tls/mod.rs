//! Transport security: TLS 1.3 through rustls for both ends (`stream`), how a sender verifies
//! its server (`client`, `pin`), the server's identity (`server`, `self_signed`) and sender
//! tokens (`token`). Without the `tls` feature, `off` stands in and refuses every use.

mod options;

pub(crate) use options::auth_frame;
pub(crate) use options::check_identity_name;
pub use options::{check_pin, split_token, ServerIdentity, TlsOptions};

#[cfg(feature = "tls")]
mod client;
#[cfg(feature = "tls")]
mod der;
#[cfg(feature = "tls")]
mod pin;
#[cfg(feature = "tls")]
mod self_signed;
#[cfg(feature = "tls")]
mod server;
#[cfg(feature = "tls")]
mod stream;
#[cfg(feature = "tls")]
mod token;

#[cfg(feature = "tls")]
pub(crate) use client::connect;
#[cfg(feature = "tls")]
pub(crate) use server::{Refused, ServerTls};
#[cfg(feature = "tls")]
pub(crate) use stream::{tls_error, TlsStream};
#[cfg(feature = "tls")]
pub use token::hash_token;
#[cfg(feature = "tls")]
pub(crate) use token::Tokens;

#[cfg(not(feature = "tls"))]
mod off;
#[cfg(not(feature = "tls"))]
pub use off::hash_token;
#[cfg(not(feature = "tls"))]
pub(crate) use off::{connect, Refused, ServerTls, TlsStream, Tokens};
