//! Reading stdin on its own thread into [`Command`]s: lines (with slash commands when
//! stdin is a terminal), or one binary message streamed in fragments. The channel is
//! bounded, so a fast stdin waits for the socket instead of filling memory. Dropping the
//! sender (at EOF or `/quit`) tells the connection that the input ended.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::SyncSender;
use std::thread;

use bytes::Bytes;
use wsflow_blocking::{CloseCode, Message};

use crate::session::Command;
use crate::show::parse_hex;

/// Bytes read from stdin at a time in binary mode (one fragment each).
const CHUNK: usize = 64 << 10;
/// The longest line held in memory: a longer one is sent in parts of this size.
const LINE_LIMIT: u64 = 64 << 20;

/// Starts the thread reading stdin as lines; `slash` turns on the slash commands.
pub fn spawn_lines(commands: SyncSender<Command>, slash: bool) {
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut stdin).take(LINE_LIMIT).read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    eprintln!("wsflow: reading stdin: {error}");
                    return;
                }
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            } else if line.len() as u64 == LINE_LIMIT {
                eprintln!(
                    "wsflow: a line of stdin is over {} MiB: sent in parts",
                    LINE_LIMIT >> 20
                );
            }
            let command = match String::from_utf8(line.clone()) {
                Ok(text) if slash && text.starts_with('/') && !text.starts_with("//") => match slash_command(&text) {
                    Ok(Some(command)) => command,
                    Ok(None) => return, // /quit
                    Err(message) => {
                        eprintln!("wsflow: {message}");
                        continue;
                    }
                },
                Ok(text) if slash && text.starts_with("//") => Command::Send(Message::text(text[1..].to_owned())),
                Ok(text) => Command::Send(Message::text(text)),
                Err(_) => {
                    eprintln!("wsflow: a line of stdin is not UTF-8: sent as a binary message");
                    Command::Send(Message::binary(line.clone()))
                }
            };
            if commands.send(command).is_err() {
                return; // the connection is over
            }
        }
    });
}

/// Starts the thread sending stdin as one binary message, a fragment per read.
pub fn spawn_binary(commands: SyncSender<Command>) {
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut chunk = vec![0; CHUNK];
            let read = match stdin.read(&mut chunk) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    eprintln!("wsflow: reading stdin: {error}");
                    0
                }
            };
            chunk.truncate(read);
            let fin = read == 0;
            let fragment = Command::Fragment {
                data: Bytes::from(chunk),
                fin,
            };
            if commands.send(fragment).is_err() || fin {
                return;
            }
        }
    });
}

/// The help printed for `/help` or an unknown command.
const SLASH_HELP: &str = "commands: /ping [text], /close [code] [reason], /binary HEX, /quit (//text sends /text)";

/// Parses a slash command: `Ok(None)` for `/quit`.
fn slash_command(line: &str) -> Result<Option<Command>, String> {
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match name {
        "/ping" => {
            if rest.len() > 125 {
                return Err("a ping carries at most 125 bytes".to_owned());
            }
            Ok(Some(Command::Ping(Bytes::from(rest.to_owned()))))
        }
        "/close" => {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = if code.is_empty() {
                CloseCode::NORMAL
            } else {
                let code: u16 = code
                    .parse()
                    .map_err(|_| format!("{code:?} is not a close code (e.g. /close 1000 bye)"))?;
                CloseCode::new(code)
            };
            Ok(Some(Command::Close(code, reason.trim().to_owned())))
        }
        "/binary" => Ok(Some(Command::Send(Message::binary(parse_hex(rest)?)))),
        "/quit" | "/exit" => Ok(None),
        "/help" => Err(SLASH_HELP.to_owned()),
        _ => Err(format!("unknown command {name}; {SLASH_HELP}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_commands_parse() {
        assert!(matches!(slash_command("/ping"), Ok(Some(Command::Ping(p))) if p.is_empty()));
        assert!(matches!(slash_command("/ping hi there"), Ok(Some(Command::Ping(p))) if p == "hi there"));
        assert!(
            matches!(slash_command("/close 4000 going now"), Ok(Some(Command::Close(c, r))) if c.as_u16() == 4000 && r == "going now")
        );
        assert!(
            matches!(slash_command("/close"), Ok(Some(Command::Close(c, r))) if c.as_u16() == 1000 && r.is_empty())
        );
        assert!(
            matches!(slash_command("/binary 01 ff"), Ok(Some(Command::Send(Message::Binary(b)))) if b[..] == [1, 0xff])
        );
        assert!(matches!(slash_command("/quit"), Ok(None)));
        assert!(slash_command("/close abc").is_err());
        assert!(slash_command("/binary xyz").is_err());
        assert!(slash_command("/nope").is_err());
        assert!(slash_command(&format!("/ping {}", "x".repeat(126))).is_err());
    }
}
