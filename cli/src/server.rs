//! `wsflow serve ADDR`: echo, broadcast, or a process per connection, over ws:// or wss://.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wsflow_blocking::hub::{Delivery, Hub, HubConfig, SlowConsumer, Subscriber};
use wsflow_blocking::wsflow::DeflateConfig;
use wsflow_blocking::PreparedMessage;
use wsflow_blocking::{
    accept_with, tls_accept, Accept, Accepted, CloseCode, Config, Decision, Event, Message, Response,
};

use crate::session::{Command, Handler, Session, Socket};
use crate::show::Log;
use crate::{exit, tls, ServeArgs};

/// Messages waiting for one broadcast client before it is dropped as too slow.
const BROADCAST_DEPTH: usize = 1024;
/// The hub's one topic.
const BROADCAST_TOPIC: &str = "broadcast";
/// Bytes waiting for one broadcast client before it is dropped as too slow (a single
/// message up to `--max-size` always fits an empty queue).
const BROADCAST_BYTES: usize = 16 << 20;
/// Messages waiting for a child's stdin (or from its stdout) before the socket (or the
/// child's stdout) stops being read: a few messages of `--max-size` at most.
const EXEC_DEPTH: usize = 4;
/// How long a child may take to exit once its connection is over, before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(2);

/// What the server does with messages.
#[derive(Clone, Debug)]
enum Mode {
    Echo,
    Broadcast(Hub),
    Exec(Arc<str>),
}

/// Everything a connection thread needs.
#[derive(Debug)]
struct Server {
    mode: Mode,
    config: Arc<Config>,
    tls: Option<Arc<rustls::ServerConfig>>,
    subprotocols: Vec<String>,
    origins: Vec<String>,
    max_connections: usize,
    active: AtomicUsize,
    verbose: bool,
    start: Instant,
}

/// Runs `wsflow serve`; returns the exit status (only on failure: it serves until killed).
pub fn run(args: ServeArgs, verbose: bool) -> u8 {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match tls::server_config(cert, key) {
            Ok(config) => Some(config),
            Err(message) => {
                eprintln!("wsflow: {message}");
                return exit::LOCAL;
            }
        },
        _ => None,
    };
    let listener = match TcpListener::bind(&args.addr) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("wsflow: cannot listen on {}: {error}", args.addr);
            return exit::LOCAL;
        }
    };
    let mut config = Config::default();
    config.max_message_size(args.max_size).max_frame_size(args.max_size);
    if !args.no_deflate {
        config.deflate(Some(DeflateConfig::default()));
    }
    let mode = match (&args.exec, args.broadcast) {
        (Some(command), _) => Mode::Exec(command.as_str().into()),
        (None, true) => Mode::Broadcast(broadcast_hub()),
        (None, false) => Mode::Echo,
    };
    let server = Arc::new(Server {
        mode,
        config: Arc::new(config),
        tls,
        subprotocols: args.subprotocols,
        origins: args.origins,
        max_connections: args.max_connections,
        active: AtomicUsize::new(0),
        verbose,
        start: Instant::now(),
    });
    let scheme = if server.tls.is_some() { "wss" } else { "ws" };
    match listener.local_addr() {
        Ok(local) => println!("listening on {scheme}://{local}/"),
        Err(error) => {
            eprintln!("wsflow: {error}");
            return exit::LOCAL;
        }
    }
    let _ = io::stdout().flush();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors and the like: say so, and go on.
                eprintln!("wsflow: accept failed: {error}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let server = server.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |addr| addr.to_string());
            let log = Log::new(server.verbose, server.start, peer);
            if let Err(error) = server.connection(stream, &log) {
                log.line(format_args!("connection failed: {error}"));
            }
        });
        if let Err(error) = spawned {
            eprintln!("wsflow: cannot start a thread for a connection: {error}");
        }
    }
    exit::OK
}

/// Counts a connection while it lives.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    fn connection(&self, stream: TcpStream, log: &Log) -> Result<(), wsflow_blocking::Error> {
        let _slot = Slot(&self.active);
        let full = self.active.fetch_add(1, Ordering::SeqCst) >= self.max_connections;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        match &self.tls {
            Some(config) => self.upgrade(tls_accept(stream, config.clone())?, peer, full, log),
            None => self.upgrade(stream, peer, full, log),
        }
    }

    /// The upgrade: refused (503 when full, 403 for another origin), answered (a plain
    /// HTTP request gets 426 with a line of text), or accepted and run.
    fn upgrade<S: Socket>(
        &self,
        stream: S,
        peer: SocketAddr,
        full: bool,
        log: &Log,
    ) -> Result<(), wsflow_blocking::Error> {
        let protocols: Vec<&str> = self.subprotocols.iter().map(String::as_str).collect();
        // With -v, a config of its own: its frame log names this peer.
        let config = match log.frames() {
            Some(observer) => {
                let mut config = (*self.config).clone();
                config.frame_observer(Some(observer));
                Arc::new(config)
            }
            None => self.config.clone(),
        };
        let accepted = accept_with(stream, config, |request| {
            log.line(format_args!(
                "> {} {} origin={:?} subprotocols={:?} extensions={:?}",
                request.method(),
                request.target(),
                request.origin().unwrap_or(""),
                request.subprotocols().collect::<Vec<_>>(),
                request.extensions().collect::<Vec<_>>()
            ));
            if full {
                return Decision::Respond(Response::new(503).with_body("too many connections\n"));
            }
            let origin_allowed = self.origins.is_empty()
                || request
                    .origin()
                    .is_some_and(|origin| self.origins.iter().any(|allowed| allowed == origin));
            if !origin_allowed {
                return Decision::Respond(Response::new(403).with_body("origin not allowed\n"));
            }
            Decision::Accept(Accept::new().subprotocol_from(request, &protocols))
        })?;
        let Accepted::WebSocket(ws, request) = accepted else {
            log.line(format_args!("< answered without upgrading"));
            return Ok(());
        };
        log.line(format_args!("< 101 connected"));
        let mut session = Session::new(ws, log.clone(), None);
        let ending = match &self.mode {
            Mode::Echo => {
                let (_keep, commands) = sync_channel(1);
                session.run(&commands, &mut Echo, None)?
            }
            Mode::Broadcast(hub) => {
                let (_keep, commands) = sync_channel(1);
                let subscriber = hub.subscriber();
                subscriber.subscribe(BROADCAST_TOPIC);
                let mut broadcaster = Broadcaster {
                    hub: hub.clone(),
                    subscriber,
                    batch: Vec::new(),
                    next: 0,
                    too_slow: false,
                };
                session.run(&commands, &mut broadcaster, None)?
            }
            Mode::Exec(command) => {
                let (child, handler, commands) =
                    match spawn_child(command, peer, request.target(), self.config.get_max_message_size()) {
                        Ok(started) => started,
                        Err(error) => {
                            eprintln!("wsflow: cannot run {command:?}: {error}");
                            session.close(CloseCode::INTERNAL_ERROR, "cannot start the process")?;
                            let (_keep, commands) = sync_channel(1);
                            session.run(&commands, &mut Echo, None)?;
                            return Ok(());
                        }
                    };
                let mut handler = handler;
                let ending = session.run(&commands, &mut handler, None);
                drop(handler); // the child's stdin closes
                reap(child, log);
                ending?
            }
        };
        log.line(format_args!("connection over (normal: {})", ending.is_normal()));
        Ok(())
    }
}

/// `--echo`: every message back to its sender.
struct Echo;

impl<S: Socket> Handler<S> for Echo {
    /// The echoes wait while the peer does not read them: so does the socket.
    fn ready(&mut self, session: &Session<S>) -> bool {
        session.has_room()
    }

    fn on_event(&mut self, session: &mut Session<S>, event: Event) -> io::Result<()> {
        if let Event::Message(message) = event {
            session.send(message).map_err(io::Error::from)?;
        }
        Ok(())
    }

    fn on_input_closed(&mut self, _session: &mut Session<S>) -> io::Result<()> {
        Ok(())
    }
}

/// `--broadcast`: one topic on a hub; a client whose queue passes `BROADCAST_DEPTH`
/// messages or `BROADCAST_BYTES` bytes is closed with 1008, so one slow reader cannot hold
/// the others back or fill memory.
fn broadcast_hub() -> Hub {
    Hub::new(HubConfig {
        queue_len: BROADCAST_DEPTH,
        queue_bytes: BROADCAST_BYTES,
        slow_consumer: SlowConsumer::Close,
    })
}

/// A `--broadcast` client: what it sends goes to the hub, what the hub delivers to its
/// subscriber is sent to it.
struct Broadcaster {
    hub: Hub,
    subscriber: Subscriber,
    /// The last batch taken from the hub, sent up to `next`.
    batch: Vec<PreparedMessage>,
    next: usize,
    /// The hub gave up on this client and its close has begun.
    too_slow: bool,
}

impl Broadcaster {
    fn close_too_slow<S: Socket>(&mut self, session: &mut Session<S>) -> io::Result<()> {
        self.too_slow = true;
        session
            .close(CloseCode::POLICY_VIOLATION, "too slow for the broadcast")
            .map_err(io::Error::from)
    }
}

impl<S: Socket> Handler<S> for Broadcaster {
    fn on_event(&mut self, _session: &mut Session<S>, event: Event) -> io::Result<()> {
        if let Event::Message(message) = event {
            self.hub.publish(BROADCAST_TOPIC, message);
        }
        Ok(())
    }

    fn outgoing(&mut self, session: &mut Session<S>) -> io::Result<bool> {
        if self.too_slow {
            return Ok(false);
        }
        // Given up on by the hub: closed at once, even while its socket is full.
        let noop = &mut std::task::Context::from_waker(std::task::Waker::noop());
        if self.subscriber.poll_too_slow(noop).is_ready() {
            return self.close_too_slow(session).map(|()| false);
        }
        // One message at a time while under the high-water mark: what is left of a batch
        // waits here for the next call.
        let mut sent = false;
        while session.has_room() {
            if let Some(message) = self.batch.get(self.next) {
                session.send_prepared(message).map_err(io::Error::from)?;
                self.next += 1;
                sent = true;
                continue;
            }
            self.batch.clear();
            self.next = 0;
            match self.subscriber.try_batch(&mut self.batch) {
                Some(Delivery::Messages { .. }) => {}
                Some(Delivery::TooSlow) => {
                    self.close_too_slow(session)?;
                    break;
                }
                Some(Delivery::Closed) | None => break,
            }
        }
        Ok(sent)
    }

    fn on_input_closed(&mut self, _session: &mut Session<S>) -> io::Result<()> {
        Ok(())
    }
}

/// `--exec`: messages to the child's stdin (through a writer thread), with one message
/// held back while its queue is full (the socket is not read meanwhile).
struct Exec {
    to_child: Option<SyncSender<Message>>,
    held: Option<Message>,
}

impl Exec {
    /// Hands the held message to the child's writer; false while its queue is full.
    fn deliver(&mut self) -> bool {
        let Some(message) = self.held.take() else {
            return true;
        };
        let Some(to_child) = &self.to_child else {
            return true; // the child's stdin is gone: messages are dropped
        };
        match to_child.try_send(message) {
            Ok(()) => true,
            Err(TrySendError::Full(message)) => {
                self.held = Some(message);
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.to_child = None;
                true
            }
        }
    }
}

impl<S: Socket> Handler<S> for Exec {
    fn on_event(&mut self, _session: &mut Session<S>, event: Event) -> io::Result<()> {
        if let Event::Message(message) = event {
            self.held = Some(message);
            self.deliver();
        }
        Ok(())
    }

    fn ready(&mut self, _session: &Session<S>) -> bool {
        self.deliver()
    }

    fn on_input_closed(&mut self, session: &mut Session<S>) -> io::Result<()> {
        // The child's stdout ended.
        session.close(CloseCode::NORMAL, "").map_err(io::Error::from)
    }
}

/// Starts `sh -c command` for a connection, with a thread writing messages to its stdin
/// and one reading its stdout lines (at most `max_line` bytes each) into commands.
fn spawn_child(
    command: &str,
    peer: SocketAddr,
    target: &str,
    max_line: usize,
) -> io::Result<(Child, Exec, Receiver<Command>)> {
    let mut child = Process::new("sh")
        .arg("-c")
        .arg(command)
        .env("WSFLOW_PEER", peer.to_string())
        .env("WSFLOW_TARGET", target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (to_child, messages) = sync_channel(EXEC_DEPTH);
    thread::spawn(move || write_to_child(stdin, &messages));
    let (commands_in, commands) = sync_channel(EXEC_DEPTH);
    thread::spawn(move || read_from_child(stdout, &commands_in, max_line));
    let handler = Exec {
        to_child: Some(to_child),
        held: None,
    };
    Ok((child, handler, commands))
}

fn write_to_child(mut stdin: ChildStdin, messages: &Receiver<Message>) {
    for message in messages {
        let written = match &message {
            Message::Text(text) => stdin
                .write_all(text.as_str().as_bytes())
                .and_then(|()| stdin.write_all(b"\n")),
            Message::Binary(data) => stdin.write_all(data),
        };
        if written.and_then(|()| stdin.flush()).is_err() {
            return; // the child stopped reading
        }
    }
}

fn read_from_child(stdout: impl Read, commands: &SyncSender<Command>, max_line: usize) {
    let mut stdout = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(max_line).unwrap_or(u64::MAX);
        match (&mut stdout).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let message = match String::from_utf8(std::mem::take(&mut line)) {
            Ok(text) => Message::text(text),
            Err(error) => Message::binary(error.into_bytes()),
        };
        if commands.send(Command::Send(message)).is_err() {
            return;
        }
    }
}

/// Waits for the child to exit after its stdin closed, killing it after [`CHILD_GRACE`].
fn reap(mut child: Child, log: &Log) {
    let deadline = Instant::now() + CHILD_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                log.line(format_args!("process exited: {status}"));
                return;
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                log.line(format_args!("process killed"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_client_that_does_not_keep_up_is_dropped_at_the_byte_budget() {
        let hub = broadcast_hub();
        let (slow, fast) = (hub.subscriber(), hub.subscriber());
        slow.subscribe(BROADCAST_TOPIC);
        fast.subscribe(BROADCAST_TOPIC);
        let message = Message::binary(vec![0; 1 << 20]);
        let mut batch = Vec::new();
        for sent in 1..=(BROADCAST_BYTES >> 20) + 1 {
            let published = hub.publish(BROADCAST_TOPIC, message.clone());
            // The fast client takes each message as it comes (as its connection would).
            assert!(matches!(fast.try_batch(&mut batch), Some(Delivery::Messages { .. })));
            assert_eq!(published.closed == 1, sent > BROADCAST_BYTES >> 20, "after {sent} MiB");
        }
        assert_eq!(slow.try_batch(&mut batch), Some(Delivery::TooSlow));
        assert_eq!(hub.subscriber_count(BROADCAST_TOPIC), 1);
    }

    #[test]
    fn a_message_larger_than_the_budget_still_reaches_an_empty_queue() {
        let hub = broadcast_hub();
        let client = hub.subscriber();
        client.subscribe(BROADCAST_TOPIC);
        let published = hub.publish(BROADCAST_TOPIC, Message::binary(vec![0; BROADCAST_BYTES + 1]));
        assert_eq!(published.queued, 1);
        assert!(matches!(
            client.try_batch(&mut Vec::new()),
            Some(Delivery::Messages { .. })
        ));
    }
}
