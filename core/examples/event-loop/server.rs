//! The echo server: one thread, one poller, every connection.
//!
//! The loop waits on the poller until a socket is ready or the earliest deadline comes,
//! then wakes the links concerned (the listener accepts), and after each wake resets that
//! link's timer, or drops it once it is finished. The poller (mio) is edge triggered: a
//! link that stopped reading with input left, and the listener when it stopped accepting
//! with connections left, are taken up again at the next turn without waiting for it.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use wsflow::{Accept, Config, Connection, DeflateConfig, Event, Message, Request, Response, ServerHandshake};

use crate::link::{is_readable, Handler, Link, Registered, LINK_INTEREST};

/// The listener's key (token) with the poller; links get the keys after it, never reused (a
/// stale event cannot reach a newer link).
const LISTENER: usize = 0;

/// Connections accepted per wake-up of the listener, at most.
const ACCEPTS_PER_WAKE: usize = 64;

/// Events taken from the poller per wait, at most (more wait for the next turn).
const EVENTS_PER_WAIT: usize = 1024;

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

/// Serves until a client sends `stop-listening` and the connections open then are done.
pub fn serve(addr: &str) -> io::Result<()> {
    let mut poll = Poll::new()?;
    // The links' handle on the poller, to register and deregister their sockets.
    let registry = Rc::new(poll.registry().try_clone()?);
    // (std's bind resolves a host name; mio takes the socket over once it is non-blocking.)
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("event-loop: listening on ws://{}/", listener.local_addr()?);
    let listener = TcpListener::from_std(listener);
    let mut listener = Some(Registered::new(
        &registry,
        listener,
        Token(LISTENER),
        Interest::READABLE,
    )?);
    // Whether the listener's backlog may still hold connections: the poller reports the
    // listener again only when a new one comes.
    let mut backlog = Backlog::Drained;

    // As the adapters' echo servers: permessage-deflate accepted when a client offers it.
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);

    let mut server = Server {
        links: HashMap::new(),
        timers: BTreeSet::new(),
        next_key: LISTENER + 1,
        ready: Vec::new(),
        echo: Echo::default(),
        buf: vec![0; 64 << 10],
    };
    let mut events = Events::with_capacity(EVENTS_PER_WAIT);
    while listener.is_some() || !server.links.is_empty() {
        // Work left over from the last turn: no waiting, only what else became ready.
        let timeout = if !server.ready.is_empty() || backlog == Backlog::More {
            Some(Duration::ZERO)
        } else {
            server
                .timers
                .first()
                .map(|(at, _)| at.saturating_duration_since(Instant::now()))
        };
        wait(&mut poll, &mut events, timeout)?;
        let now = Instant::now();
        // (Links queued during this turn wait for the next one: the others go first.)
        let ready = std::mem::take(&mut server.ready);
        let mut accept = backlog != Backlog::Drained;
        for event in events.iter() {
            match event.token() {
                Token(LISTENER) => accept = true,
                Token(key) => server.wake(key, now, is_readable(event)),
            }
        }
        if accept {
            if let Some(socket) = &listener {
                backlog = server.accept(&registry, socket, &config, now)?;
            }
        }
        while let Some(&(at, key)) = server.timers.first() {
            if at > now {
                break;
            }
            server.timers.pop_first();
            if let Some(link) = server.links.get_mut(&key) {
                link.armed = None;
            }
            server.wake(key, now, false);
        }
        // The links that stopped at their read cap with input left, after the others.
        for key in ready {
            if let Some(timed) = server.links.get_mut(&key) {
                timed.queued = false;
            }
            server.wake(key, now, false);
        }
        if server.echo.stop_listening && listener.is_some() {
            // Closing the listening socket refuses new connections at once.
            listener = None;
            backlog = Backlog::Drained;
            println!(
                "event-loop: stopped listening, waiting for {} connection(s)",
                server.links.len()
            );
        }
    }
    Ok(())
}

/// Waits for events until `timeout`. (A signal that interrupts the wait is a wake-up with
/// no events.)
fn wait(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(error) if error.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        result => result,
    }
}

/// What the listener's backlog may hold after a wake-up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backlog {
    /// `accept` said `WouldBlock`: the poller reports the next connection.
    Drained,
    /// The per-wake cap was reached: accept again at the next turn, without waiting.
    More,
    /// `accept` failed (e.g. out of file descriptors): try again at the next wake-up.
    Failed,
}

/// The loop's state besides the poller and the listener.
struct Server {
    links: HashMap<usize, Timed>,
    /// Every link's next deadline, earliest first: the poller waits until the first.
    timers: BTreeSet<(Instant, usize)>,
    next_key: usize,
    /// The links to wake again at the next turn without waiting for the poller (input left
    /// unread, see `Link::has_pending_input`), each once.
    ready: Vec<usize>,
    echo: Echo,
    /// One read buffer for every connection: a link keeps no input of its own (the core
    /// keeps what it needs).
    buf: Vec<u8>,
}

/// A link, the deadline its timer entry holds, and whether it is in `Server::ready`.
struct Timed {
    link: Link,
    armed: Option<Instant>,
    queued: bool,
}

impl Server {
    fn accept(
        &mut self,
        registry: &Rc<mio::Registry>,
        listener: &TcpListener,
        config: &Arc<Config>,
        now: Instant,
    ) -> io::Result<Backlog> {
        for _ in 0..ACCEPTS_PER_WAKE {
            // (mio's accepted sockets are non-blocking already.)
            let (tcp, _) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(Backlog::Drained),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // (E.g. out of file descriptors: try again at the next wake-up.)
                Err(error) => {
                    eprintln!("event-loop: accept: {error}");
                    return Ok(Backlog::Failed);
                }
            };
            // The answers of a read go out in one write anyway: no need for Nagle's delay.
            tcp.set_nodelay(true)?;
            let key = self.next_key;
            self.next_key += 1;
            let socket = Registered::new(registry, tcp, Token(key), LINK_INTEREST)?;
            let link = Link::accept(socket, ServerHandshake::new(config.clone(), now));
            self.links.insert(
                key,
                Timed {
                    link,
                    armed: None,
                    queued: false,
                },
            );
            // (Its request may have come before it was registered: it reads at this turn.)
            self.settle(key);
        }
        Ok(Backlog::More)
    }

    /// Wakes a link, then settles it.
    fn wake(&mut self, key: usize, now: Instant, readable: bool) {
        if let Some(timed) = self.links.get_mut(&key) {
            timed.link.wake(now, readable, &mut self.buf, &mut self.echo);
            self.settle(key);
        }
    }

    /// After a wake: drops the link if it is finished, else resets its timer, and queues it
    /// for the next turn if it has input left to read.
    fn settle(&mut self, key: usize) {
        let Some(timed) = self.links.get_mut(&key) else {
            return;
        };
        let keep = !timed.link.is_finished();
        if keep && !timed.queued && timed.link.has_pending_input() {
            timed.queued = true;
            self.ready.push(key);
        }
        let deadline = if keep { timed.link.deadline() } else { None };
        if timed.armed != deadline {
            if let Some(at) = timed.armed.take() {
                self.timers.remove(&(at, key));
            }
            if let Some(at) = deadline {
                self.timers.insert((at, key));
            }
            timed.armed = deadline;
        }
        if !keep {
            // Dropping the link deregisters its socket from the poller and closes it.
            self.links.remove(&key);
        }
    }
}

/// What the server does with its connections: accept, and echo.
#[derive(Default)]
struct Echo {
    stop_listening: bool,
}

impl Handler for Echo {
    fn decide(&mut self, request: &Request) -> Result<Accept, Response> {
        if !request.is_websocket() {
            return Err(Response::new(426)
                .with_header("Upgrade", "websocket")
                .with_header("Sec-WebSocket-Version", "13")
                .with_body("this endpoint speaks WebSocket\n"));
        }
        Ok(Accept::new().subprotocol_from(request, SUBPROTOCOLS))
    }

    fn event(&mut self, _now: Instant, connection: &mut Connection, event: Event) {
        match event {
            // Whole messages, however fragmented they arrived: echoed as one message. Pings
            // are answered by the core, and a close frame is echoed when its event is pulled.
            Event::Message(message) => {
                if matches!(&message, Message::Text(text) if text.as_str() == "stop-listening") {
                    self.stop_listening = true;
                }
                // (Fails only once a close frame was sent: nothing to echo to then.)
                let _ = connection.send(message);
            }
            Event::Closed(closed) if !closed.is_clean() => {
                eprintln!("event-loop: connection closed: {:?}", closed.reason);
            }
            _ => {}
        }
    }

    fn failed(&mut self, why: String) {
        eprintln!("event-loop: {why}");
    }
}
