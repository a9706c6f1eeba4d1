//! How things look: messages on stdout, the `-v` log on stderr, how a connection ended,
//! and the parsers for sizes and hex on the command line.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use wsflow_blocking::{CloseReason, Closed, Event, Message};

/// Bytes of a binary message shown in its hex preview.
const PREVIEW_BYTES: usize = 32;
/// Bytes of a rejected handshake's body that are printed.
const BODY_BYTES: usize = 2048;

/// `<binary N bytes> 00 01 ..` with the first [`PREVIEW_BYTES`] in hex.
pub fn binary_summary(data: &[u8]) -> String {
    let mut text = format!("<binary {} bytes>", data.len());
    for byte in data.iter().take(PREVIEW_BYTES) {
        let _ = write!(text, " {byte:02x}");
    }
    if data.len() > PREVIEW_BYTES {
        text.push_str(" ...");
    }
    text
}

/// `text` with control characters (other than newline and tab) escaped, so that a peer
/// cannot send escape sequences to the terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(escaped, "\\u{{{:x}}}", c as u32);
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// The start of an HTTP body for a message: lossy UTF-8, controls escaped, at most
/// [`BODY_BYTES`] bytes.
pub fn body_preview(body: &[u8]) -> String {
    let shown = &body[..body.len().min(BODY_BYTES)];
    let mut text = escape_controls(&String::from_utf8_lossy(shown)).into_owned();
    if body.len() > BODY_BYTES {
        let _ = write!(text, "... ({} bytes in all)", body.len());
    }
    text
}

/// Parses hex bytes: `48656c6c6f`, `48 65 6c`, `0x48 0x65`.
///
/// # Errors
/// A message for anything else.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .split_whitespace()
        .map(|word| word.strip_prefix("0x").unwrap_or(word))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {text:?}"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|at| {
            digits
                .get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex: {text:?}"))
        })
        .collect()
}

/// Parses a size in bytes with an optional `K`, `M` or `G` suffix (powers of 1024).
///
/// # Errors
/// A message for anything else, or zero.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = upper.strip_suffix("IB").or(upper.strip_suffix('B')).unwrap_or(&upper);
    let (digits, shift) = match upper.chars().last() {
        Some('K') => (&upper[..upper.len() - 1], 10),
        Some('M') => (&upper[..upper.len() - 1], 20),
        Some('G') => (&upper[..upper.len() - 1], 30),
        _ => (upper, 0),
    };
    let number: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 65536, 64K, 16M)"))?;
    let size = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if size == 0 {
        return Err("the size must be at least 1 byte".to_owned());
    }
    Ok(size)
}

/// Parses seconds (`0.5`, `10`) into a positive duration.
///
/// # Errors
/// A message for anything else.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0 * 365.0) {
        return Err(format!("{text:?}: give a number of seconds above 0"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// How a connection ended, in one line.
pub fn describe_closed(closed: &Closed) -> String {
    let code = closed.code().as_u16();
    let reason = closed
        .received
        .as_ref()
        .map(|frame| escape_controls(frame.reason.as_str()).into_owned())
        .unwrap_or_default();
    match &closed.reason {
        CloseReason::Clean => format!("closed: {code} {reason:?}"),
        CloseReason::Failed(error) => format!("protocol error: {error} ({})", error.close_code().as_u16()),
        CloseReason::TimedOut(timeout) => format!("timed out: {timeout:?} (closed with {code} {reason:?})"),
        CloseReason::Eof => format!("connection lost without a closing handshake ({code} {reason:?})"),
        other => format!("closed: {other:?} ({code})"),
    }
}

/// The `-v` log on stderr: one line per message, control frame and close, with the time
/// since start and who it is about.
#[derive(Clone, Debug)]
pub struct Log {
    enabled: bool,
    start: Instant,
    who: String,
}

impl Log {
    /// A log that prints when `enabled`, with `who` (a peer address or empty) on each line.
    pub fn new(enabled: bool, start: Instant, who: String) -> Self {
        Self { enabled, start, who }
    }

    /// Whether lines are printed.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A frame observer for the connection's config: one line per frame read (`<`) or
    /// sent (`>`) with its opcode, FIN, RSV1 and payload length; `None` when not enabled.
    pub fn frames(&self) -> Option<wsflow_blocking::wsflow::FrameObserver> {
        use wsflow_blocking::wsflow::FrameDirection;
        if !self.enabled {
            return None;
        }
        let log = self.clone();
        Some(std::sync::Arc::new(
            move |direction, header: &wsflow_blocking::wsflow::frame::FrameHeader| {
                let arrow = match direction {
                    FrameDirection::Received => '<',
                    FrameDirection::Sent => '>',
                };
                log.line(format_args!(
                    "{arrow} frame {:?} fin={} rsv1={} len={}",
                    header.opcode,
                    u8::from(header.fin),
                    u8::from(header.rsv & 0b100 != 0),
                    header.payload_len
                ));
            },
        ))
    }

    /// Prints one line.
    pub fn line(&self, args: fmt::Arguments<'_>) {
        if self.enabled {
            let elapsed = self.start.elapsed().as_secs_f64();
            if self.who.is_empty() {
                eprintln!("[{elapsed:10.6}] {args}");
            } else {
                eprintln!("[{elapsed:10.6}] {} {args}", self.who);
            }
        }
    }

    /// Logs an outgoing message.
    pub fn sent(&self, message: &Message) {
        self.line(format_args!("> {}", kind_and_length(message)));
    }

    /// Logs an incoming event.
    pub fn received(&self, event: &Event) {
        if !self.enabled {
            return;
        }
        match event {
            Event::Message(message) => self.line(format_args!("< {}", kind_and_length(message))),
            Event::Fragment { kind, data, fin } => {
                self.line(format_args!("< fragment {kind:?} {} bytes fin={fin}", data.len()));
            }
            Event::Ping(payload) => {
                self.line(format_args!("< ping {} bytes", payload.len()));
                self.line(format_args!("> pong {} bytes (automatic)", payload.len()));
            }
            Event::Pong(payload) => self.line(format_args!("< pong {} bytes", payload.len())),
            Event::CloseReceived(Some(frame)) => self.line(format_args!(
                "< close {} {:?}",
                frame.code.as_u16(),
                escape_controls(frame.reason.as_str())
            )),
            Event::CloseReceived(None) => self.line(format_args!("< close (no status code)")),
            Event::Closed(closed) => self.line(format_args!("{}", describe_closed(closed))),
            other => self.line(format_args!("< {other:?}")),
        }
    }
}

fn kind_and_length(message: &Message) -> String {
    match message {
        Message::Text(text) => format!("text {} bytes", text.as_str().len()),
        Message::Binary(data) => format!("binary {} bytes", data.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn hex_accepts_spaces_and_prefixes() {
        assert_eq!(parse_hex("48656c"), Ok(b"Hel".to_vec()));
        assert_eq!(parse_hex("0x48 65 6C"), Ok(b"Hel".to_vec()));
        assert!(parse_hex("486").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }

    #[test]
    fn binary_preview_is_bounded() {
        assert_eq!(binary_summary(&[1, 2, 0xff]), "<binary 3 bytes> 01 02 ff");
        let long = binary_summary(&[0; 1000]);
        assert!(long.starts_with("<binary 1000 bytes> 00") && long.ends_with(" ..."));
        assert!(long.len() < 150);
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(escape_controls("\u{1b}[2Jx"), "\\u{1b}[2Jx");
    }
}
