//! A rustls connection over a TCP socket as a [`Transport`]: reads buffered 256 KiB at a time,
//! `input_ready` that counts plaintext already decrypted, and `finish` with close_notify.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use rustls::Connection;

use crate::error::AuthFailure;
use crate::transport::{readable, NoSigpipe, Transport};

/// Socket bytes read at once, then handed to rustls record by record: as much as the receiver
/// asks for content at once (`server/conn.rs`), so one read can return that much plaintext.
/// Measured against 64 KiB: 3–4% more throughput over TLS (docs/security.md).
const RAW_SIZE: usize = 256 * 1024;

pub(crate) struct TlsStream {
    conn: Connection,
    sock: TcpStream,
    raw: Vec<u8>,
    /// `raw[start..end]` is read from the socket but not yet given to rustls.
    start: usize,
    end: usize,
    /// An error met after a read had plaintext to return: the next read returns it.
    failed: Option<io::Error>,
}

impl TlsStream {
    pub(crate) fn new(conn: impl Into<Connection>, sock: TcpStream) -> TlsStream {
        TlsStream {
            conn: conn.into(),
            sock,
            raw: vec![0; RAW_SIZE],
            start: 0,
            end: 0,
            failed: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs the handshake to its end. The error is rustls' own when it says why.
    pub(crate) fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.conn.complete_io(&mut NoSigpipe(&self.sock))?;
        }
        self.write_pending()
    }

    fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut NoSigpipe(&self.sock))?;
        }
        Ok(())
    }

    /// Gives rustls the raw bytes read so far and decrypts what they complete; reads the
    /// socket first when none are left. `Ok(false)` at the end of the socket's stream.
    fn feed(&mut self) -> io::Result<bool> {
        if self.start == self.end {
            let n = loop {
                match self.sock.read(&mut self.raw) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            (self.start, self.end) = (0, n);
        }
        let eof = self.start == self.end;
        let mut slice = &self.raw[self.start..self.end];
        let taken = self.conn.read_tls(&mut slice)?;
        self.start += taken;
        self.process()?;
        Ok(!eof)
    }

    /// `e` now when nothing was read, else the `n` bytes now and `e` at the next read.
    fn fail_after(&mut self, n: usize, e: io::Error) -> io::Result<usize> {
        if n == 0 {
            return Err(e);
        }
        self.failed = Some(e);
        Ok(n)
    }

    fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            // Tell the peer why (rustls queued an alert), then fail.
            let _ = self.write_pending();
            return Err(tls_error(e));
        }
        Ok(())
    }
}

/// A rustls error as an I/O error. Anything but a record that failed to decrypt (damage in
/// transit) is a failure of authentication, and is marked so (`ErrorKind::Auth`).
pub(crate) fn tls_error(e: rustls::Error) -> io::Error {
    match e {
        rustls::Error::DecryptError => io::Error::new(io::ErrorKind::InvalidData, e),
        e => io::Error::new(io::ErrorKind::PermissionDenied, AuthFailure(describe(&e))),
    }
}

/// A rustls error in words a user can act on.
pub(crate) fn describe(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, Error as E};
    match e {
        E::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate".into()
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateExpired) => {
            format!("the peer refused our certificate ({e})")
        }
        E::InvalidMessage(_) => "the peer does not speak TLS".into(),
        E::InvalidCertificate(rustls::CertificateError::Other(why)) => why.to_string(),
        e => format!("TLS: {e}"),
    }
}

impl Read for TlsStream {
    /// Fills `buf` with as much plaintext as the socket bytes already read hold (rustls keeps
    /// one record's at a time), so a large read is not cut into 16 KiB records; waits for the
    /// socket only while nothing was read.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut n = 0;
        loop {
            match self.conn.reader().read(&mut buf[n..]) {
                Ok(0) if n < buf.len() => return Ok(n),
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.fail_after(n, e),
            }
            if n == buf.len() || (n > 0 && self.start == self.end) {
                return Ok(n);
            }
            match self.feed() {
                Ok(true) => {}
                // The socket ended: rustls now reports a clean close or a truncation.
                Ok(false) if n == 0 => return self.conn.reader().read(buf),
                Ok(false) => return Ok(n),
                Err(e) => return self.fail_after(n, e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.write_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.write_pending()
    }
}

impl Transport for TlsStream {
    /// Ready when rustls holds decrypted plaintext (or the peer's close), or when the socket
    /// has bytes that complete a record; records that carry no plaintext are consumed here
    /// without blocking.
    fn input_ready(&mut self) -> bool {
        loop {
            if self.failed.is_some() || !self.conn.wants_read() {
                return true;
            }
            if self.start == self.end && !readable(&self.sock) {
                return false;
            }
            // Bytes are here, so this does not block. At the end of the stream or on an
            // error, a read returns at once too.
            if !matches!(self.feed(), Ok(true)) {
                return true;
            }
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.write_pending()?;
        self.sock.shutdown(Shutdown::Write)
    }

    fn set_read_timeout(&mut self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(self, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{ServerIdentity, ServerTls, TlsOptions};
    use std::time::{Duration, Instant};

    /// A sender's and a receiver's stream over loopback, the handshake done.
    fn pair() -> (TlsStream, TlsStream) {
        let state = tempfile::tempdir().unwrap();
        let identity = ServerIdentity::SelfSigned {
            state_dir: state.path().to_path_buf(),
        };
        let server = ServerTls::load(&identity, None, false).unwrap();
        let opts = TlsOptions {
            pin: Some(server.pin().to_string()),
            ..Default::default()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(server.rustls_config()).unwrap();
            let mut stream = TlsStream::new(conn, sock);
            stream.handshake().unwrap();
            stream
        });
        let sock = TcpStream::connect(addr).unwrap();
        let client = crate::tls::connect(sock, "localhost", &opts).unwrap();
        (client, accepting.join().unwrap())
    }

    /// Waits until `n` bytes are on the socket, unread.
    fn arrived(s: &TlsStream, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut peek = vec![0u8; n];
        while s.sock.peek(&mut peek).unwrap() < n {
            assert!(Instant::now() < deadline, "the bytes did not arrive");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A knsock sender and receiver agree on AES-128-GCM, the cheapest suite (docs/security.md).
    #[test]
    fn knsock_peers_use_aes_128_gcm() {
        let (client, server) = pair();
        let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
        assert_eq!(client.connection().negotiated_cipher_suite(), Some(suite));
        assert_eq!(server.connection().negotiated_cipher_suite(), Some(suite));
    }

    #[test]
    fn a_read_takes_the_plaintext_of_every_record_already_here() {
        let (mut tx, mut rx) = pair();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        tx.write_all(&data).unwrap();
        tx.finish().unwrap();
        arrived(&rx, data.len());
        let mut buf = vec![0u8; 256 * 1024];
        let n = rx.read(&mut buf).unwrap();
        assert!(n > 16 * 1024, "one read gave {n} bytes");
        let mut got = buf[..n].to_vec();
        loop {
            match rx.read(&mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert!(got == data);
    }

    #[test]
    fn a_damaged_record_fails_the_read_after_the_plaintext_before_it() {
        let (mut tx, mut rx) = pair();
        let mut wire = Vec::new();
        tx.conn.writer().write_all(&[1u8; 20_000]).unwrap();
        while tx.conn.wants_write() {
            tx.conn.write_tls(&mut wire).unwrap();
        }
        *wire.last_mut().unwrap() ^= 1;
        tx.sock.write_all(&wire).unwrap();
        arrived(&rx, wire.len());
        let mut buf = vec![0u8; 64 * 1024];
        assert_eq!(rx.read(&mut buf).unwrap(), 16 * 1024);
        let e = rx.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
