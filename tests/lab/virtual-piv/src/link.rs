//! The TCP link to vpcd (the PC/SC reader driver of vsmartcard).
//!
//! The framing is `vpicc`'s; this module adds what a fast test loop needs: Nagle off, and
//! `TCP_QUICKACK` re-armed before every read. Linux turns quick-ACK mode off again after a
//! while, and then the kernel holds the ACK of each reader request back (delayed ACK, ~40 ms)
//! while vpcd waits for it before sending the next one: about 44 ms per APDU instead of ~0.2 ms.

use std::{
    io::{self, ErrorKind},
    net::{Ipv4Addr, SocketAddr, TcpStream},
};

use socket2::SockRef;
use vpicc::VSmartCard;

/// Why the link to vpcd ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// vpcd is not listening (pcscd not running, or vpcd not configured for this port).
    #[error("cannot connect to vpcd at {addr}: {source} (is pcscd with vsmartcard-vpcd running?)")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// Setting a socket option failed.
    #[error("cannot configure the vpcd socket: {0}")]
    Socket(#[source] io::Error),
    /// Reading or writing the socket failed, or vpcd sent something that is not its protocol.
    #[error("vpcd link failed: {0}")]
    Io(#[source] io::Error),
}

/// A connected, tuned link to vpcd.
pub struct VpcdLink {
    connection: vpicc::Connection,
    /// Second handle on the same socket, for options that must be set again before each read.
    socket: TcpStream,
    addr: SocketAddr,
}

impl VpcdLink {
    /// Connects to vpcd on `127.0.0.1:port`.
    pub fn connect(port: u16) -> Result<Self, LinkError> {
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        let stream =
            TcpStream::connect(addr).map_err(|source| LinkError::Connect { addr, source })?;
        stream.set_nodelay(true).map_err(LinkError::Socket)?;
        let socket = stream.try_clone().map_err(LinkError::Socket)?;
        Ok(Self {
            connection: vpicc::Connection::from(stream),
            socket,
            addr,
        })
    }

    /// The vpcd address this link is connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves reader requests with `card` until vpcd closes the link (`Ok`) or it fails.
    ///
    /// `quickack` should be on; off only reproduces the slow stock loop for measurements.
    pub fn serve(mut self, card: &mut impl VSmartCard, quickack: bool) -> Result<(), LinkError> {
        loop {
            if quickack {
                rearm_quickack(&self.socket).map_err(LinkError::Socket)?;
            }
            match self.connection.poll(card) {
                Ok(()) => {}
                Err(err) if is_closed(&err) => return Ok(()),
                Err(err) => return Err(LinkError::Io(err)),
            }
        }
    }
}

/// Asks the kernel to acknowledge the next incoming segment at once.
fn rearm_quickack(socket: &TcpStream) -> io::Result<()> {
    SockRef::from(socket).set_quickack(true)
}

fn is_closed(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}
