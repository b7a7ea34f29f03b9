//! One console client on the unix socket: lines in, answers and the `cmd> ` prompt out
//! (contract section 7).

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::UnixStream;

use super::service::Service;

/// The console prompt.
pub const PROMPT: &str = "cmd> ";
/// Longest console line.
pub const MAX_LINE: usize = 4096;

/// A console connection.
pub struct ConsoleConn {
    /// The socket.
    pub stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    closing: bool,
}

impl ConsoleConn {
    /// A new console client: greeted with the prompt.
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            inbuf: Vec::new(),
            outbuf: PROMPT.as_bytes().to_vec(),
            closing: false,
        }
    }

    /// Reads lines, runs them, writes answers. Returns false when the connection is done.
    pub fn on_ready<S: Service>(&mut self, svc: &mut S, now: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        let mut eof = false;
        while !self.closing {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
            while let Some(pos) = self.inbuf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.inbuf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                match svc.console_line(text.trim(), now) {
                    Some(answer) => {
                        self.outbuf.extend_from_slice(answer.as_bytes());
                        self.outbuf.extend_from_slice(b"\n");
                        self.outbuf.extend_from_slice(PROMPT.as_bytes());
                    }
                    None => {
                        self.closing = true;
                        break;
                    }
                }
            }
            if self.inbuf.len() > MAX_LINE {
                self.outbuf.extend_from_slice(b"line too long\n");
                self.closing = true;
            }
        }
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        !(eof || (self.closing && self.outbuf.is_empty()))
    }
}
