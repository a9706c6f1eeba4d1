//! Test support: an in-memory client/server pair under virtual time, and raw frame tools.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsflow::frame::{apply_mask, FrameHeader, OpCode, MAX_HEADER_LEN};
use wsflow::{
    Accept, ClientEvent, ClientHandshake, ClientRequest, Config, Connection, Event, ServerEvent, ServerHandshake,
    Transmit,
};

/// Encodes one frame; `mask` makes it a client frame.
pub fn frame(opcode: OpCode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    frame_rsv(opcode, fin, 0, payload, mask)
}

pub fn frame_rsv(opcode: OpCode, fin: bool, rsv: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let len = header.encode(&mut head);
    let mut out = head[..len].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask, 0);
    }
    out
}

/// A masked client frame.
pub fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    frame(opcode, fin, payload, Some([0x12, 0x34, 0x56, 0x78]))
}

/// A decoded frame seen on the wire (payload unmasked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    pub opcode: OpCode,
    pub fin: bool,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OpCode::Close && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Decodes every complete frame in `bytes`.
pub fn decode_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while let Ok(Some((header, len))) = FrameHeader::decode(bytes) {
        let end = len + header.payload_len as usize;
        assert!(end <= bytes.len(), "truncated frame on the wire");
        let mut payload = bytes[len..end].to_vec();
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask, 0);
        }
        frames.push(WireFrame {
            opcode: header.opcode,
            fin: header.fin,
            masked: header.mask.is_some(),
            payload,
        });
        bytes = &bytes[end..];
    }
    assert!(bytes.is_empty(), "trailing bytes on the wire");
    frames
}

/// What one side wrote: bytes, and whether it shut down its write half.
#[derive(Default, Debug)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub shutdown: bool,
}

/// Drains every transmit of a connection.
pub fn drain_transmits(connection: &mut Connection) -> Output {
    let mut output = Output::default();
    while let Some(transmit) = connection.poll_transmit() {
        match transmit {
            Transmit::Data(bytes) => {
                assert!(!output.shutdown, "data after shutdown");
                output.bytes.extend_from_slice(&bytes);
            }
            Transmit::Shutdown => {
                assert!(!output.shutdown, "shutdown twice");
                output.shutdown = true;
            }
        }
    }
    output
}

/// Drains every event of a connection.
pub fn drain_events(connection: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| connection.poll_event()).collect()
}

/// A server connection fed `input`; returns its events and what it wrote.
pub fn server_fed(config: Config, input: &[u8]) -> (Vec<Event>, Output, Connection) {
    let mut server = Connection::server(Arc::new(config), Instant::now());
    server.handle_data(Instant::now(), input);
    // Events first: pulling `CloseReceived` queues the close echo.
    let events = drain_events(&mut server);
    (events, drain_transmits(&mut server), server)
}

/// The close event at the end of `events`.
pub fn closed(events: &[Event]) -> &wsflow::Closed {
    match events.last() {
        Some(Event::Closed(closed)) => closed,
        other => panic!("expected Closed last, got {other:?} in {events:?}"),
    }
}

/// Client and server connected in memory, with virtual time.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub now: Instant,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Bytes in flight that `step` has not delivered yet.
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    pub client_shut: bool,
    pub server_shut: bool,
}

impl Pair {
    /// Connects a pair through the real handshakes.
    pub fn new(config: Config) -> Self {
        Self::with_configs(config.clone(), config)
    }

    pub fn with_configs(client_config: Config, server_config: Config) -> Self {
        let now = Instant::now();
        let request = ClientRequest::new("ws://example.com/").unwrap();
        let mut client = ClientHandshake::new(&request, Arc::new(client_config), now, [9; 32]).unwrap();
        let mut server = ServerHandshake::new(Arc::new(server_config), now);
        while let Some(Transmit::Data(bytes)) = client.poll_transmit() {
            server.handle_data(now, &bytes);
        }
        let Some(ServerEvent::Request(_)) = server.poll_event() else {
            panic!("no request")
        };
        let mut server = server.accept(now, Accept::new()).unwrap();
        while let Some(Transmit::Data(bytes)) = server.poll_transmit() {
            client.handle_data(now, &bytes);
        }
        let Some(ClientEvent::Accepted(_)) = client.poll_event() else {
            panic!("not accepted")
        };
        let client = client.into_connection(now).unwrap();
        Self {
            client,
            server,
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            client_shut: false,
            server_shut: false,
        }
    }

    /// Collects outputs into the in-flight buffers and events into the event lists.
    pub fn collect(&mut self) {
        self.client_events.extend(drain_events(&mut self.client));
        self.server_events.extend(drain_events(&mut self.server));
        let out = drain_transmits(&mut self.client);
        self.to_server.extend_from_slice(&out.bytes);
        self.client_shut |= out.shutdown;
        let out = drain_transmits(&mut self.server);
        self.to_client.extend_from_slice(&out.bytes);
        self.server_shut |= out.shutdown;
    }

    /// Delivers everything in flight once (and a shutdown as EOF). Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        self.collect();
        let mut moved = false;
        if !self.to_server.is_empty() {
            let bytes = std::mem::take(&mut self.to_server);
            self.server.handle_data(self.now, &bytes);
            moved = true;
        }
        if !self.to_client.is_empty() {
            let bytes = std::mem::take(&mut self.to_client);
            self.client.handle_data(self.now, &bytes);
            moved = true;
        }
        if self.client_shut && self.server.state() != wsflow::State::Closed {
            self.server.handle_eof(self.now);
            moved = true;
        }
        if self.server_shut && self.client.state() != wsflow::State::Closed {
            self.client.handle_eof(self.now);
            moved = true;
        }
        self.collect();
        moved
    }

    /// Steps until nothing moves; panics on a livelock.
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle within 1000 steps");
    }

    /// Advances virtual time, firing due timers on both sides.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.collect();
    }

    pub fn server_messages(&self) -> Vec<wsflow::Message> {
        messages(&self.server_events)
    }

    pub fn client_messages(&self) -> Vec<wsflow::Message> {
        messages(&self.client_events)
    }
}

pub fn messages(events: &[Event]) -> Vec<wsflow::Message> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn payload(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// A fresh connection in the client role (opened with mask seed `[7; 32]`) or the server
/// role.
pub fn connection_in_role(config: &Config, client_role: bool) -> Connection {
    if client_role {
        Connection::client(Arc::new(config.clone()), Instant::now(), [7; 32])
    } else {
        Connection::server(Arc::new(config.clone()), Instant::now())
    }
}

/// The reference run of `input`: fed a byte at a time, everything drained after each byte
/// (never a small-message fast path, never a queue of more than one frame's events), then
/// the end of the stream. Returns the events and the bytes written.
pub fn byte_by_byte(config: &Config, client_role: bool, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut c = connection_in_role(config, client_role);
    let mut events = Vec::new();
    let mut out = Vec::new();
    for b in input {
        c.handle_data(now, std::slice::from_ref(b));
        events.extend(drain_events(&mut c));
        out.extend(drain_transmits(&mut c).bytes);
    }
    c.handle_eof(now);
    events.extend(drain_events(&mut c));
    out.extend(drain_transmits(&mut c).bytes);
    (events, out)
}

/// Pulls the next event with `poll_message` first, checking that it takes the next event
/// exactly when that is a message (what it leaves is then pulled with `poll_event`).
pub fn pull_message_first(c: &mut Connection) -> Option<Event> {
    if let Some(message) = c.poll_message() {
        return Some(Event::Message(message));
    }
    let polled = c.poll_event();
    assert!(
        !matches!(polled, Some(Event::Message(_))),
        "poll_message left {polled:?}"
    );
    polled
}

/// Pulls the next event with `poll_event`, checking that the queries which answer without
/// building it (`io_state`'s `events_waiting` and `next_is_data`) agree with what it is.
pub fn pull_checking_queries(c: &mut Connection) -> Option<Event> {
    let state = c.io_state();
    let polled = c.poll_event();
    assert_eq!(state.events_waiting(), polled.is_some(), "events_waiting vs poll_event");
    let is_data = matches!(polled, Some(Event::Message(_) | Event::Fragment { .. }));
    assert_eq!(state.next_is_data(), is_data, "next_is_data vs poll_event");
    polled
}

/// A small deterministic generator (xorshift64*).
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Valid UTF-8 of exactly `len` bytes, with multi-byte characters.
    pub fn text(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            let left = len - out.len();
            let c = match self.below(5) {
                0 if left >= 4 => '😀',
                1 if left >= 3 => '€',
                2 if left >= 2 => 'é',
                _ => (b'a' + self.below(26) as u8) as char,
            };
            out.push(c);
        }
        out
    }
}
