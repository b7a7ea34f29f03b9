//! A non-blocking byte stream over a `mio` TCP socket, plain or TLS (rustls driven by
//! hand). `Read`/`Write` return `WouldBlock` when the socket has nothing or is full, so
//! the same code serves HTTP and, after an upgrade, `tungstenite`.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use rustls::ServerConnection;

/// A connection's byte stream.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

/// rustls over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ServerConnection,
}

impl TlsStream {
    /// Wraps an accepted socket; the handshake happens as data flows.
    pub fn new(tcp: TcpStream, tls: ServerConnection) -> Self {
        Self { tcp, tls }
    }

    /// Writes pending TLS records to the socket until it would block.
    fn write_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let state = self.tls.process_new_packets();
                    // Send alerts and handshake records even when processing failed.
                    match self.write_tls() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    if let Err(e) = state {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.tls.writer().write(buf)?;
        match self.write_tls() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 {
            // rustls's plaintext buffer is full: wait for the socket.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls()
    }
}

impl Stream {
    /// The TCP socket, for registration with the poll.
    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.tcp,
        }
    }

    /// Ends our sending side (TLS: close_notify first); reading goes on.
    pub fn shutdown_write(&mut self) {
        if let Stream::Tls(t) = self {
            t.tls.send_close_notify();
            let _ = t.write_tls();
        }
        let _ = self.tcp_mut().shutdown(Shutdown::Write);
    }

    /// Closes both directions.
    pub fn shutdown(&mut self) {
        if let Stream::Tls(t) = self {
            t.tls.send_close_notify();
            let _ = t.write_tls();
        }
        let _ = self.tcp_mut().shutdown(Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}
