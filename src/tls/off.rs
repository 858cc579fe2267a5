//! Stand-ins for a build without the `tls` feature: the same names, and every use refused with
//! one clear error.

use std::io;
use std::net::TcpStream;
use std::path::Path;

use super::options::{ServerIdentity, TlsOptions};
use crate::error::{Error, Result};
use crate::transport::Transport;

fn disabled() -> Error {
    Error::invalid("knsock was built without TLS (the `tls` feature)")
}

/// Never built: there is no TLS stream without the feature.
pub(crate) enum TlsStream {}

impl io::Read for TlsStream {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

impl io::Write for TlsStream {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}

impl Transport for TlsStream {
    fn input_ready(&mut self) -> bool {
        match *self {}
    }
    fn finish(&mut self) -> io::Result<()> {
        match *self {}
    }
    fn set_read_timeout(&mut self, _: Option<std::time::Duration>) -> io::Result<()> {
        match *self {}
    }
    fn send(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
}

pub(crate) fn connect(_: TcpStream, _: &str, _: &TlsOptions) -> Result<TlsStream> {
    Err(disabled())
}

pub(crate) struct Refused {
    pub(crate) error: Error,
    pub(crate) credential: bool,
}

pub(crate) enum ServerTls {}

impl ServerTls {
    pub(crate) fn load(_: &ServerIdentity, _: Option<&Path>, _: bool) -> Result<ServerTls> {
        Err(disabled())
    }
    pub(crate) fn pin(&self) -> &str {
        match *self {}
    }
}

pub(crate) enum Tokens {}

impl Tokens {
    pub(crate) fn load(_: &Path) -> Result<Tokens> {
        Err(disabled())
    }
    pub(crate) fn verify(&self, _: &str, _: &str) -> bool {
        match *self {}
    }
}

/// Hashing a token needs the `tls` feature.
pub fn hash_token(_: &str) -> Result<String> {
    Err(disabled())
}
