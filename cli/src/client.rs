//! `wsflow connect URL`: stdin to messages, messages to stdout.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use wsflow_blocking::wsflow::{DeflateConfig, HandshakeError};
use wsflow_blocking::{ClientBuilder, CloseCode, Config, Error, Event, Message, Response};

use crate::session::{Ending, Handler, Session};
use crate::show::{binary_summary, body_preview, describe_closed, escape_controls, Log};
use crate::{exit, input, tls, ConnectArgs};

/// Commands read ahead of the socket (lines, or 64 KiB chunks in binary mode).
const CHANNEL_DEPTH: usize = 16;

/// Runs `wsflow connect`; returns the exit status.
pub fn run(args: ConnectArgs, verbose: bool) -> u8 {
    let log = Log::new(verbose, Instant::now(), String::new());
    let interactive = io::stdin().is_terminal();
    let tls_config = match tls::client_config(args.insecure, args.cacert.as_deref()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("wsflow: {message}");
            return exit::LOCAL;
        }
    };
    let mut config = Config::default();
    config
        .max_message_size(args.max_size)
        .max_frame_size(args.max_size)
        .handshake_timeout(args.connect_timeout);
    if !args.no_deflate {
        config.deflate(Some(DeflateConfig::default()));
    }
    config.frame_observer(log.frames());
    let mut builder = ClientBuilder::new(&args.url).config(config);
    for protocol in &args.subprotocols {
        builder = builder.subprotocol(protocol.as_str());
    }
    for (name, value) in &args.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin.as_str());
    }
    if let Some(tls_config) = tls_config {
        builder = builder.tls_config(tls_config);
    }
    if let Some(proxy) = &args.proxy {
        builder = builder.proxy(proxy);
    } else if args.no_proxy {
        builder = builder.no_proxy();
    }

    log.line(format_args!("connecting to {}", args.url));
    let (ws, response) = match builder.connect() {
        Ok(connected) => connected,
        Err(error) => return connect_failed(&args.url, &error),
    };
    log_handshake(&log, &response);
    if interactive {
        eprintln!(
            "connected to {}{}; type lines to send them, /help for commands, Ctrl-D to close",
            args.url,
            response
                .subprotocol()
                .map(|protocol| format!(" (subprotocol {protocol})"))
                .unwrap_or_default()
        );
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    install_ctrl_c(interrupt.clone());
    let (commands_in, commands) = sync_channel(CHANNEL_DEPTH);
    if args.binary {
        input::spawn_binary(commands_in);
    } else {
        input::spawn_lines(commands_in, interactive);
    }
    let mut printer = Printer {
        raw_binary: args.binary,
        escape: io::stdout().is_terminal(),
        once: args.once,
        replied: false,
        interactive,
        stdout_failed: None,
    };
    let mut session = Session::new(ws, log, args.ping_interval);
    let result = session.run(&commands, &mut printer, Some(&interrupt));
    if let Some(error) = printer.stdout_failed {
        // Stdout closed early (`| head -1`) is no news; other failures are.
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("wsflow: writing stdout: {error}");
        }
        return exit::LOCAL;
    }
    match result {
        Ok(ending) => ended(&ending, interactive),
        Err(error) => {
            eprintln!("wsflow: connection failed: {error}");
            exit::PROTOCOL
        }
    }
}

/// The exit status for how the connection ended, with a line on stderr unless normal.
fn ended(ending: &Ending, interactive: bool) -> u8 {
    if ending.is_normal() {
        if interactive {
            eprintln!("{}", describe_closed(&ending.closed));
        }
        exit::OK
    } else {
        eprintln!("wsflow: {}", describe_closed(&ending.closed));
        exit::PROTOCOL
    }
}

/// The first Ctrl-C closes with 1001 (the loop sees the flag); a second exits at once.
fn install_ctrl_c(interrupt: Arc<AtomicBool>) {
    let presses = AtomicUsize::new(0);
    let installed = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
        interrupt.store(true, Ordering::SeqCst);
    });
    if let Err(error) = installed {
        eprintln!("wsflow: Ctrl-C will not close cleanly: {error}");
    }
}

fn log_handshake(log: &Log, response: &Response) {
    if !log.enabled() {
        return;
    }
    log.line(format_args!("< HTTP {} {}", response.status(), response.reason()));
    log.line(format_args!(
        "subprotocol: {}",
        response.subprotocol().unwrap_or("(none)")
    ));
    let extensions: Vec<&str> = response.headers().list("sec-websocket-extensions").collect();
    log.line(format_args!(
        "extensions: {}",
        if extensions.is_empty() {
            "(none)".to_owned()
        } else {
            extensions.join(", ")
        }
    ));
}

/// Reports a failed connection attempt; returns the exit status.
fn connect_failed(url: &str, error: &Error) -> u8 {
    match error {
        Error::Url(error) => {
            eprintln!("wsflow: bad URL {url:?}: {error}");
            exit::USAGE
        }
        Error::Send(error) => {
            eprintln!("wsflow: cannot build the request: {error}");
            exit::USAGE
        }
        Error::Rejected(response) => {
            eprintln!(
                "wsflow: the server rejected the upgrade: HTTP {} {}",
                response.status(),
                escape_controls(response.reason())
            );
            if !response.body().is_empty() {
                eprintln!("{}", body_preview(response.body()));
            }
            exit::REJECTED
        }
        Error::Handshake(HandshakeError::TimedOut) => {
            eprintln!("wsflow: cannot connect to {url}: no answer to the upgrade within --connect-timeout");
            exit::CONNECT
        }
        Error::Handshake(HandshakeError::UnexpectedEof) => {
            eprintln!("wsflow: cannot connect to {url}: the server closed the connection before answering");
            exit::CONNECT
        }
        Error::Handshake(error) => {
            eprintln!("wsflow: invalid handshake response from {url}: {error}");
            exit::PROTOCOL
        }
        Error::Transport(error) => {
            eprintln!("wsflow: cannot connect to {url}: {}", error_chain(error));
            exit::CONNECT
        }
        other => {
            eprintln!("wsflow: cannot connect to {url}: {other}");
            exit::CONNECT
        }
    }
}

/// An error and its sources, `: `-separated (rustls's certificate errors sit inside).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Prints what arrives on stdout.
struct Printer {
    raw_binary: bool,
    escape: bool,
    once: bool,
    replied: bool,
    interactive: bool,
    /// Why printing failed: the loop ends, and the exit status is [`exit::LOCAL`].
    stdout_failed: Option<io::Error>,
}

impl Printer {
    fn print(&self, message: &Message) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match message {
            Message::Text(text) if self.escape => writeln!(out, "{}", escape_controls(text.as_str()))?,
            Message::Text(text) => {
                out.write_all(text.as_str().as_bytes())?;
                out.write_all(b"\n")?;
            }
            Message::Binary(data) if self.raw_binary => out.write_all(data)?,
            Message::Binary(data) => writeln!(out, "{}", binary_summary(data))?,
        }
        out.flush()
    }
}

impl<S: crate::session::Socket> Handler<S> for Printer {
    fn on_event(&mut self, session: &mut Session<S>, event: Event) -> io::Result<()> {
        match event {
            Event::Message(message) => {
                if self.once && self.replied {
                    return Ok(()); // after the first reply, while the close completes
                }
                if let Err(error) = self.print(&message) {
                    let kind = error.kind();
                    self.stdout_failed = Some(error);
                    return Err(io::Error::new(kind, "stdout"));
                }
                if self.once {
                    self.replied = true;
                    session.close(CloseCode::NORMAL, "").map_err(io::Error::from)?;
                }
            }
            Event::Pong(payload) => match session.round_trip(&payload) {
                Some(rtt) => eprintln!("pong: {:.3} ms", rtt.as_secs_f64() * 1000.0),
                None if self.interactive => eprintln!("pong (unsolicited, {} bytes)", payload.len()),
                None => {}
            },
            Event::CloseReceived(frame) if self.interactive => match frame {
                Some(frame) => eprintln!(
                    "server closed: {} {:?}",
                    frame.code.as_u16(),
                    escape_controls(frame.reason.as_str())
                ),
                None => eprintln!("server closed (no status code)"),
            },
            _ => {}
        }
        Ok(())
    }

    fn on_input_closed(&mut self, session: &mut Session<S>) -> io::Result<()> {
        session.log().line(format_args!("stdin ended"));
        if !self.once {
            session.close(CloseCode::NORMAL, "").map_err(io::Error::from)?;
        }
        Ok(())
    }
}
