//! A receiver at its connection cap (docs/protocol.md section 1): it answers a connection's hello
//! with the busy refusal (version 0, then ERROR 17) and closes, until it has refused as many as
//! it was told; later connections go to a real receiver. Std and the wire codec only: the CLI's
//! tests use it too.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use knsock::protocol::{self, Frame, Hello};

/// Upper bound for reading the sender, which closes once it has the answer.
const WAIT: Duration = Duration::from_secs(30);

/// What the busy receiver says, as a receiver at its cap would.
pub const BUSY_TEXT: &str = "receiver busy: 10000 connections, the most it serves; retry later";

/// Where a [`BusyReceiver`] says it is busy.
#[derive(Clone, Copy)]
pub enum BusyAt {
    /// Refuses the hello (version 0, ERROR 17): the receiver at its cap.
    Hello,
    /// Accepts the hello, reads the first frame (an OFFER) and ends the connection with ERROR 17.
    FirstFrame,
}

pub struct BusyReceiver {
    pub addr: SocketAddr,
    /// Connections accepted (a sender's attempts), counted before any answer is written: once a
    /// send returned, it counts every attempt the send made.
    pub connections: Arc<AtomicU64>,
}

impl BusyReceiver {
    /// Busy for every connection.
    pub fn start(at: BusyAt) -> BusyReceiver {
        BusyReceiver::busy_then(at, u64::MAX, None)
    }

    /// Busy for the first `busy` connections; the later ones are forwarded to `then` (or
    /// refused too without one).
    pub fn busy_then(at: BusyAt, busy: u64, then: Option<SocketAddr>) -> BusyReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&connections);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                match then {
                    Some(target) if n > busy => forward(client, target),
                    _ => drop(std::thread::spawn(move || refuse(client, at))),
                }
            }
        });
        BusyReceiver { addr, connections }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn attempts(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Answers as a busy receiver, then reads what the sender still sends until it closes (closing
/// with unread bytes would reset the connection before the sender read the answer).
fn refuse(mut s: TcpStream, at: BusyAt) {
    let _ = s.set_read_timeout(Some(WAIT));
    let mut first = [0u8; 1];
    if s.read_exact(&mut first).is_err() {
        return;
    }
    let Ok(hello) = Hello::read_after_first_byte(&mut s) else {
        return;
    };
    let mut out = Vec::new();
    if let BusyAt::FirstFrame = at {
        // Grants what was asked, so a first flight goes on: its EARLY frame is the one read.
        protocol::encode_hello_reply(protocol::VERSION_MAX, hello.caps, &mut out);
        if s.write_all(&out).is_err() || Frame::read_from(&mut s).is_err() {
            return;
        }
        out.clear();
    } else {
        protocol::encode_hello_reply(0, 0, &mut out);
    }
    Frame::Error {
        code: protocol::Code::Busy as u16,
        text: BUSY_TEXT.to_string(),
    }
    .encode(&mut out);
    let _ = s.write_all(&out);
    let _ = s.shutdown(Shutdown::Write);
    let _ = std::io::copy(&mut s, &mut std::io::sink());
}

/// Passes the connection on to `target`, both ways, each end's EOF passed on too.
fn forward(client: TcpStream, target: SocketAddr) {
    let server = TcpStream::connect(target).unwrap();
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
    pipe(server, client);
}
