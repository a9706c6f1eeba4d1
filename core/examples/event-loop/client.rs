//! The clients: the same links and the same kind of loop as the server's, one connection
//! at a time.
//!
//! - `client URL`: checks against an echo server (the event-loop server, or Python
//!   `websockets` / Node `ws`): sends a few messages and a ping, checks the echoes and the
//!   pong, closes with 1000 and checks the closing handshake. One line per check, then
//!   `N passed, M failed`.
//! - `autobahn-client BASE_URL AGENT`: the Autobahn|Testsuite client protocol
//!   (`/getCaseCount`, `/runCase?case=I&agent=A` echoing everything, `/updateReports`).

use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Registry, Token};
use wsflow::{
    Bytes, ClientHandshake, ClientRequest, CloseCode, Config, Connection, DeflateConfig, Event, Message, MessageKind,
    Response,
};

use crate::link::{is_readable, Handler, Link, Registered, LINK_INTEREST};

/// A loop for one connection at a time, on one poller.
pub struct Client {
    poll: Poll,
    /// The link's handle on the poller, to register and deregister its socket.
    registry: Rc<Registry>,
    events: Events,
    /// The key (token) of the next connection's socket: never reused, so that an event
    /// left from an earlier connection cannot reach a later one.
    next_key: usize,
    buf: Vec<u8>,
    config: Arc<Config>,
}

impl Client {
    /// A client that offers permessage-deflate, as browsers do.
    pub fn new() -> io::Result<Self> {
        let mut config = Config::default();
        config.deflate(Some(DeflateConfig::default()));
        let poll = Poll::new()?;
        Ok(Self {
            registry: Rc::new(poll.registry().try_clone()?),
            poll,
            events: Events::with_capacity(16),
            next_key: 0,
            buf: vec![0; 64 << 10],
            config: Arc::new(config),
        })
    }

    /// Connects to `url` and runs the connection until it is over.
    pub fn run(&mut self, request: &ClientRequest, handler: &mut impl Handler) -> io::Result<()> {
        if request.is_secure() {
            return Err(io::Error::other("wss:// needs TLS, which this example leaves out"));
        }
        // (A blocking connect, for brevity: a loop serving other sockets meanwhile would
        // connect a non-blocking socket and wait until it is writable.)
        let tcp = std::net::TcpStream::connect((request.host_unbracketed(), request.port()))?;
        tcp.set_nodelay(true)?;
        tcp.set_nonblocking(true)?;
        let tcp = TcpStream::from_std(tcp);
        // The core takes no randomness of its own: 32 bytes seed the generator of the
        // handshake key and of every masking key.
        let mut entropy = [0; 32];
        getrandom::fill(&mut entropy).map_err(io::Error::from)?;
        let now = Instant::now();
        let handshake = ClientHandshake::new(request, self.config.clone(), now, entropy).map_err(io::Error::other)?;
        let key = Token(self.next_key);
        self.next_key += 1;
        let socket = Registered::new(&self.registry, tcp, key, LINK_INTEREST)?;
        let mut link = Link::connect(socket, handshake);
        link.wake(now, false, &mut self.buf, handler); // writes the request
        while !link.is_finished() {
            // Input left unread at the last wake (its read cap): no waiting, the poller
            // does not report it again.
            let timeout = if link.has_pending_input() {
                Some(Duration::ZERO)
            } else {
                link.deadline().map(|at| at.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut self.events, timeout) {
                // (A signal: a wake-up with no events.)
                Err(error) if error.kind() == io::ErrorKind::Interrupted => self.events.clear(),
                result => result?,
            }
            let readable = self
                .events
                .iter()
                .any(|event| event.token() == key && is_readable(event));
            link.wake(Instant::now(), readable, &mut self.buf, handler);
        }
        Ok(())
    }
}

fn request(url: &str) -> io::Result<ClientRequest> {
    ClientRequest::new(url).map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {error}")))
}

// ---- client URL ----

/// Runs the checks against the echo server at `url`; returns whether all passed.
pub fn check(url: &str) -> io::Result<bool> {
    let mut checks = Checks::default();
    let result = Client::new()?.run(&request(url)?.subprotocol("chat"), &mut checks);
    if let Err(error) = result {
        checks.report("connection", false, &error.to_string());
    }
    for (name, _) in std::mem::take(&mut checks.expected) {
        checks.report(name, false, "no echo before the end");
    }
    println!("{} passed, {} failed", checks.passed, checks.failed);
    Ok(checks.failed == 0)
}

/// The checks, run as the connection's events come.
#[derive(Default)]
struct Checks {
    /// The echoes still expected, in order.
    expected: VecDeque<(&'static str, Message)>,
    ping: Option<Bytes>,
    passed: usize,
    failed: usize,
}

impl Checks {
    fn report(&mut self, name: &str, ok: bool, detail: &str) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        println!("{} {name}{detail}", if ok { "PASS" } else { "FAIL" });
    }

    /// Once every echo and the pong are in: close with 1000.
    fn close_when_done(&mut self, now: Instant, connection: &mut Connection) {
        if self.expected.is_empty() && self.ping.is_none() {
            if let Err(error) = connection.close(now, CloseCode::NORMAL, "done") {
                self.report("close", false, &error.to_string());
            }
        }
    }
}

/// The messages sent, each expected back as it was.
fn messages() -> Vec<(&'static str, Message)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64; // xorshift: 1 MiB that does not compress
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let sized = |len: usize| Message::binary(noise[..len].to_vec());
    vec![
        ("text", Message::text("hello, event loop")),
        ("non-ASCII text", Message::text("héllo wörld ✓ 🦀")),
        ("empty text", Message::text("")),
        (
            "binary, every byte value",
            Message::binary((0..=255).collect::<Vec<u8>>()),
        ),
        (
            "compressible text, 66,000 bytes",
            Message::text("event loop ".repeat(6000)),
        ),
        ("125-byte binary", sized(125)),
        ("126-byte binary", sized(126)),
        ("65,535-byte binary", sized(65535)),
        ("65,536-byte binary", sized(65536)),
        ("1 MiB binary", Message::binary(noise)),
    ]
}

impl Handler for Checks {
    fn opened(&mut self, now: Instant, connection: &mut Connection, response: &Response) {
        let protocol = response.subprotocol();
        self.report("subprotocol", protocol == Some("chat"), &format!("{protocol:?}"));
        self.report("permessage-deflate negotiated", connection.is_compressed(), "");
        for (name, message) in messages() {
            if let Err(error) = connection.send(message.clone()) {
                self.report(name, false, &error.to_string());
                continue;
            }
            self.expected.push_back((name, message));
        }
        // One text message in three fragments, split inside "é": echoed as one message.
        let whole = "fragments: héllo";
        let split = whole.find('é').unwrap_or(0) + 1;
        let parts = [
            &whole.as_bytes()[..8],
            &whole.as_bytes()[8..split],
            &whole.as_bytes()[split..],
        ];
        let sent = parts.iter().enumerate().try_for_each(|(i, part)| {
            connection.send_fragment(MessageKind::Text, Bytes::copy_from_slice(part), i == parts.len() - 1)
        });
        match sent {
            Ok(()) => self
                .expected
                .push_back(("fragmented text, split inside a code point", Message::text(whole))),
            Err(error) => self.report("fragmented text", false, &error.to_string()),
        }
        let payload = Bytes::from_static(b"event-loop ping");
        match connection.ping(payload.clone()) {
            Ok(()) => self.ping = Some(payload),
            Err(error) => self.report("ping", false, &error.to_string()),
        }
        self.close_when_done(now, connection);
    }

    fn event(&mut self, now: Instant, connection: &mut Connection, event: Event) {
        match event {
            Event::Message(message) => {
                match self.expected.pop_front() {
                    Some((name, expected)) => {
                        let detail = if message == expected {
                            format!("{} bytes", message.len())
                        } else {
                            format!("{} bytes back, {} sent", message.len(), expected.len())
                        };
                        self.report(name, message == expected, &detail);
                    }
                    None => self.report("no unexpected message", false, &format!("{} bytes", message.len())),
                }
                self.close_when_done(now, connection);
            }
            // (Unsolicited pongs are allowed: only ours is checked.)
            Event::Pong(payload) if self.ping.as_ref() == Some(&payload) => {
                self.ping = None;
                self.report("ping answered with its payload", true, "");
                self.close_when_done(now, connection);
            }
            Event::Closed(closed) => {
                let detail = format!("{:?}, server's code {}", closed.reason, closed.code().as_u16());
                self.report(
                    "close 1000, clean",
                    closed.is_clean() && closed.code() == CloseCode::NORMAL,
                    &detail,
                );
            }
            _ => {}
        }
    }

    fn failed(&mut self, why: String) {
        self.report("handshake", false, &why);
    }
}

// ---- autobahn-client BASE_URL AGENT ----

/// Runs every case of the fuzzing server at `base`, then has it write its reports.
pub fn autobahn(base: &str, agent: &str) -> io::Result<()> {
    let mut client = Client::new()?;
    let mut count = CaseCount(None);
    client.run(&request(&format!("{base}/getCaseCount"))?, &mut count)?;
    let count = count
        .0
        .ok_or_else(|| io::Error::other("getCaseCount did not answer with a number"))?;
    println!("event-loop autobahn-client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(error) = client.run(&request(&url)?, &mut EchoAll) {
            eprintln!("event-loop autobahn-client: case {case}: {error}");
        }
    }
    client.run(
        &request(&format!("{base}/updateReports?agent={agent}"))?,
        &mut CloseAtOnce,
    )?;
    println!("event-loop autobahn-client: reports updated");
    Ok(())
}

/// `/getCaseCount`: one text message, the number of cases.
struct CaseCount(Option<u32>);

impl Handler for CaseCount {
    fn event(&mut self, _now: Instant, _connection: &mut Connection, event: Event) {
        if let Event::Message(Message::Text(text)) = event {
            self.0 = text.as_str().trim().parse().ok();
        }
    }

    fn failed(&mut self, why: String) {
        eprintln!("event-loop autobahn-client: getCaseCount: {why}");
    }
}

/// `/runCase`: echo every message until the server closes.
struct EchoAll;

impl Handler for EchoAll {
    fn event(&mut self, _now: Instant, connection: &mut Connection, event: Event) {
        if let Event::Message(message) = event {
            let _ = connection.send(message);
        }
    }

    fn failed(&mut self, why: String) {
        eprintln!("event-loop autobahn-client: {why}");
    }
}

/// `/updateReports`: close as soon as it opens.
struct CloseAtOnce;

impl Handler for CloseAtOnce {
    fn opened(&mut self, now: Instant, connection: &mut Connection, _response: &Response) {
        let _ = connection.close(now, CloseCode::NORMAL, "");
    }

    fn event(&mut self, _now: Instant, _connection: &mut Connection, _event: Event) {}

    fn failed(&mut self, why: String) {
        eprintln!("event-loop autobahn-client: updateReports: {why}");
    }
}
