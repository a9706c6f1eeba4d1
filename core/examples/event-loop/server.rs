//! The echo server: one thread, one poller, every connection.
//!
//! The loop waits on the poller until a socket is ready or the earliest deadline comes,
//! then wakes the links concerned (the listener accepts), and after each wake re-arms that
//! link's interest and timer, or drops it once it is finished.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use polling::{Event as Interest, Events, Poller};
use wsflow::{Accept, Config, Connection, DeflateConfig, Event, Message, Request, Response, ServerHandshake};

use crate::link::{Handler, Link, Registered};

/// The listener's key with the poller; links get the keys after it, never reused (a stale
/// event cannot reach a newer link).
const LISTENER: usize = 0;

/// Connections accepted per wake-up of the listener, at most.
const ACCEPTS_PER_WAKE: usize = 64;

/// Subprotocols the server speaks (echo either way), chosen in the client's order.
const SUBPROTOCOLS: &[&str] = &["chat", "superchat"];

/// Serves until a client sends `stop-listening` and the connections open then are done.
pub fn serve(addr: &str) -> io::Result<()> {
    let poller = Rc::new(Poller::new()?);
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    println!("event-loop: listening on ws://{}/", listener.local_addr()?);
    let mut listener = Some(Registered::new(&poller, listener, Interest::readable(LISTENER))?);

    // As the adapters' echo servers: permessage-deflate accepted when a client offers it.
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);

    let mut server = Server {
        links: HashMap::new(),
        timers: BTreeSet::new(),
        next_key: LISTENER + 1,
        echo: Echo::default(),
        buf: vec![0; 64 << 10],
    };
    let mut events = Events::new();
    while listener.is_some() || !server.links.is_empty() {
        events.clear();
        let timeout = server
            .timers
            .first()
            .map(|(at, _)| at.saturating_duration_since(Instant::now()));
        poller.wait(&mut events, timeout)?;
        let now = Instant::now();
        for event in events.iter() {
            match (&listener, event.key) {
                (Some(socket), LISTENER) => {
                    server.accept(&poller, socket, &config, now)?;
                    socket.rearm(Interest::readable(LISTENER))?;
                }
                _ => server.wake(event.key, now, event.readable),
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
        if server.echo.stop_listening && listener.is_some() {
            // Closing the listening socket refuses new connections at once.
            listener = None;
            println!(
                "event-loop: stopped listening, waiting for {} connection(s)",
                server.links.len()
            );
        }
    }
    Ok(())
}

/// The loop's state besides the poller and the listener.
struct Server {
    links: HashMap<usize, Timed>,
    /// Every link's next deadline, earliest first: the poller waits until the first.
    timers: BTreeSet<(Instant, usize)>,
    next_key: usize,
    echo: Echo,
    /// One read buffer for every connection: a link keeps no input of its own (the core
    /// keeps what it needs).
    buf: Vec<u8>,
}

/// A link and the deadline its timer entry holds.
struct Timed {
    link: Link,
    armed: Option<Instant>,
}

impl Server {
    fn accept(
        &mut self,
        poller: &Rc<Poller>,
        listener: &TcpListener,
        config: &Arc<Config>,
        now: Instant,
    ) -> io::Result<()> {
        for _ in 0..ACCEPTS_PER_WAKE {
            let (tcp, _) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // (E.g. out of file descriptors: try again at the next wake-up.)
                Err(error) => {
                    eprintln!("event-loop: accept: {error}");
                    break;
                }
            };
            tcp.set_nonblocking(true)?;
            // The answers of a read go out in one write anyway: no need for Nagle's delay.
            tcp.set_nodelay(true)?;
            let key = self.next_key;
            self.next_key += 1;
            let socket = Registered::new(poller, tcp, Interest::readable(key))?;
            let link = Link::accept(socket, key, ServerHandshake::new(config.clone(), now));
            self.links.insert(key, Timed { link, armed: None });
            self.settle(key);
        }
        Ok(())
    }

    /// Wakes a link, then settles it.
    fn wake(&mut self, key: usize, now: Instant, readable: bool) {
        if let Some(timed) = self.links.get_mut(&key) {
            timed.link.wake(now, readable, &mut self.buf, &mut self.echo);
            self.settle(key);
        }
    }

    /// After a wake: drops the link if it is finished, else re-arms its interest and its
    /// timer.
    fn settle(&mut self, key: usize) {
        let Some(timed) = self.links.get_mut(&key) else {
            return;
        };
        let keep = !timed.link.is_finished()
            && timed
                .link
                .rearm()
                .inspect_err(|error| eprintln!("event-loop: connection {key}: poller: {error}"))
                .is_ok();
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
            // Dropping the link deletes its socket from the poller and closes it.
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
