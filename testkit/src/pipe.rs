//! A datagram pipe from a browser-like peer to a worker's media port: a connected UDP
//! socket, or an ICE-TCP connection with RFC 4571 framing (each datagram behind its
//! 16-bit length).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// A datagram pipe to the worker. Reads wait at most the timeout given at creation.
pub enum Pipe {
    /// A UDP socket connected to the worker.
    Udp(UdpSocket),
    /// An ICE-TCP connection and the bytes read but not yet framed.
    Tcp(TcpStream, Vec<u8>),
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Pipe {
    /// A UDP socket on 127.0.0.1 connected to `server`.
    pub fn udp(server: SocketAddr, read_timeout: Duration) -> io::Result<Self> {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.connect(server)?;
        s.set_read_timeout(Some(read_timeout))?;
        Ok(Pipe::Udp(s))
    }

    /// An ICE-TCP connection to `server`.
    pub fn tcp(server: SocketAddr, read_timeout: Duration) -> io::Result<Self> {
        let s = TcpStream::connect(server)?;
        s.set_read_timeout(Some(read_timeout))?;
        Ok(Pipe::Tcp(s, Vec::new()))
    }

    /// Sends one datagram (framed on TCP).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Pipe::Udp(s) => s.send(data).map(drop),
            Pipe::Tcp(s, _) => {
                let len = u16::try_from(data.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "over 64 KiB"))?;
                let mut framed = Vec::with_capacity(2 + data.len());
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(data);
                s.write_all(&framed)
            }
        }
    }

    /// The next datagram, or `None` when none came within the read timeout.
    pub fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = [0u8; 4096];
        match self {
            Pipe::Udp(s) => match s.recv(&mut buf) {
                Ok(n) => Ok(Some(buf[..n].to_vec())),
                Err(e) if timed_out(&e) => Ok(None),
                Err(e) => Err(e),
            },
            Pipe::Tcp(s, acc) => loop {
                if acc.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([acc[0], acc[1]]));
                    if acc.len() >= 2 + len {
                        let frame = acc[2..2 + len].to_vec();
                        acc.drain(..2 + len);
                        return Ok(Some(frame));
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => acc.extend_from_slice(&buf[..n]),
                    Err(e) if timed_out(&e) => return Ok(None),
                    Err(e) => return Err(e),
                }
            },
        }
    }
}
