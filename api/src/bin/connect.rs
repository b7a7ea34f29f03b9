//! `connect`: the console client (contract section 7, the old `connect.js`).
//!
//! `connect` opens an interactive console on the server's unix socket (`CONSOLE_SOCKET`,
//! default `/tmp/kolabmeet-server.sock`, or `--socket PATH`); `connect --stats` prints the
//! `stats` answer and exits.

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

const PROMPT: &str = "cmd> ";

/// Reads until the server's prompt; returns what came before it.
fn read_answer(stream: &mut UnixStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.ends_with(PROMPT.as_bytes()) {
            buf.truncate(buf.len() - PROMPT.len());
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&buf).into_owned())
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn main() -> ExitCode {
    let mut socket = std::env::var("CONSOLE_SOCKET")
        .ok()
        .filter(|s| !s.is_empty() && s != "none")
        .unwrap_or_else(|| "/tmp/kolabmeet-server.sock".to_owned());
    let mut stats = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--stats" => stats = true,
            "--socket" => match args.next() {
                Some(p) => socket = p,
                None => {
                    eprintln!("connect: --socket needs a path");
                    return ExitCode::from(2);
                }
            },
            "--help" | "-h" => {
                println!(
                    "Usage: connect [--stats] [--socket PATH]\n  Opens the kolabmeet-server console (CONSOLE_SOCKET, default /tmp/kolabmeet-server.sock).\n  --stats prints rooms and peers counts and exits."
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("connect: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let mut stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect: cannot open the console at {socket}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = read_answer(&mut stream) {
        eprintln!("connect: {e}");
        return ExitCode::FAILURE;
    }
    if stats {
        if let Err(e) = stream.write_all(b"stats\n") {
            eprintln!("connect: {e}");
            return ExitCode::FAILURE;
        }
        return match read_answer(&mut stream) {
            Ok(Some(a)) => {
                println!("{}", a.trim_end());
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("connect: the server closed the console");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("connect: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let _ = write!(out, "{PROMPT}");
    let _ = out.flush();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
            break;
        }
        match read_answer(&mut stream) {
            Ok(Some(a)) => {
                let _ = write!(out, "{a}{PROMPT}");
                let _ = out.flush();
            }
            _ => break,
        }
    }
    let _ = writeln!(out);
    ExitCode::SUCCESS
}
