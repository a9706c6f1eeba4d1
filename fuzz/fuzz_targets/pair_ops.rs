//! A client and a server connected in memory through the real handshakes, driven by
//! arbitrary operations: sends, fragments, pings and closes on either side, partial
//! deliveries, corrupted bytes, virtual time and transport loss. Then a closing handshake
//! and, if needed, the timers end both sides.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsflow::{CloseCode, CloseReason, Closed, Config, Connection, Event, Message, MessageKind, SendError, State};
use wsflow_fuzz::{check_events, connect, deflate_config, messages, pump_answering, reassembled, Wire};

/// Operations past this many are ignored.
const MAX_OPS: usize = 256;
/// Full deliveries after which a pair must be quiet.
const SETTLE_STEPS: usize = 64;
const CLIENT: usize = 0;
const SERVER: usize = 1;
/// Text that fragments cut anywhere, code points included (1 + 2 + 3 + 4 bytes).
const FRAGMENT_TEXT: &str = "aé€𝄞";

#[derive(Arbitrary, Debug)]
struct Input {
    /// Bit 0: the client streams; bit 1: the server streams; bit 2: the client offers
    /// permessage-deflate; bit 3: the server accepts it; bit 4: one side echoes every
    /// message (or part) it receives as it pulls it, the server if bit 5 is set.
    flags: u8,
    /// The client's and the server's permessage-deflate settings (see `deflate_config`).
    deflate: [u8; 2],
    /// Outgoing frames carry at most 16 times this many bytes (0: no limit).
    frame_size: u8,
    ops: Vec<Op>,
}

/// `client` picks the side that acts; `how` picks the send method (see [`How`]).
#[derive(Arbitrary, Debug)]
enum Op {
    SendText {
        client: bool,
        how: u8,
        chars: u16,
        seed: u8,
    },
    SendBinary {
        client: bool,
        how: u8,
        len: u16,
        seed: u8,
    },
    SendFragment {
        client: bool,
        text: bool,
        len: u8,
        skew: u8,
        fin: bool,
    },
    Ping {
        client: bool,
        len: u8,
    },
    Close {
        client: bool,
        code: u16,
        reason_len: u8,
    },
    Deliver {
        to_server: bool,
        max_bytes: u16,
    },
    CorruptByte {
        to_server: bool,
        index: u16,
        xor: u8,
    },
    AdvanceTime {
        millis: u16,
    },
    Eof {
        client: bool,
    },
}

fn config(streaming: bool, deflate: Option<u8>, frame_size: u8) -> Config {
    let mut config = Config::default();
    config
        .deflate(deflate.map(deflate_config))
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .max_fragments(4 * MAX_OPS)
        .streaming(streaming)
        .outgoing_frame_size((frame_size > 0).then(|| usize::from(frame_size) * 16))
        .ping_interval(Some(Duration::from_secs(5)))
        .pong_timeout(Duration::from_secs(10))
        .close_timeout(Duration::from_secs(10));
    config
}

fn text(chars: u16, seed: u8) -> String {
    const ALPHABET: [char; 5] = ['a', 'é', '€', '𝄞', ' '];
    let step = usize::from(seed | 1);
    (0..usize::from(chars % 1024))
        .map(|index| ALPHABET[(index * step + usize::from(seed)) % ALPHABET.len()])
        .collect()
}

fn binary(len: u16, seed: u8) -> Vec<u8> {
    (0..len % 4096)
        .map(|index| (index as u8).wrapping_mul(seed | 1) ^ seed)
        .collect()
}

/// What one end sent, to check its commands and what the peer receives.
#[derive(Default)]
struct Sender {
    /// Every message a send accepted, in order: what the peer must receive.
    sent: Vec<Message>,
    /// The message being sent in fragments.
    fragmented: Option<(MessageKind, Vec<u8>)>,
}

/// The error a command must return first: sending needs an open connection.
fn check_open(connection: &Connection) -> Result<(), SendError> {
    if connection.io_state().can_send() {
        Ok(())
    } else {
        Err(SendError::Closed)
    }
}

/// How a whole message is sent (from a byte: 0 and 1 as the `bool` that came before).
#[derive(Clone, Copy, Debug)]
enum How {
    /// `send_uncompressed`.
    Uncompressed,
    /// `send`.
    Send,
    /// `send_copied`, from borrowed text or bytes.
    Copied,
}

impl From<u8> for How {
    fn from(byte: u8) -> Self {
        match byte % 3 {
            0 => Self::Uncompressed,
            1 => Self::Send,
            _ => Self::Copied,
        }
    }
}

impl Sender {
    fn send(&mut self, connection: &mut Connection, message: Message, how: How) {
        let expected = check_open(connection).and(match self.fragmented {
            Some(_) => Err(SendError::FragmentInProgress),
            None => Ok(()),
        });
        let result = match (how, &message) {
            (How::Uncompressed, _) => connection.send_uncompressed(message.clone()),
            (How::Send, _) => connection.send(message.clone()),
            (How::Copied, Message::Text(text)) => connection.send_copied(text.as_str()),
            (How::Copied, Message::Binary(data)) => connection.send_copied(&data[..]),
        };
        assert_eq!(result, expected);
        if expected.is_ok() {
            self.sent.push(message);
        }
    }

    fn send_fragment(&mut self, connection: &mut Connection, kind: MessageKind, data: Bytes, fin: bool) {
        let expected = check_open(connection)
            .and_then(|()| match &self.fragmented {
                Some((in_progress, _)) if *in_progress != kind => Err(SendError::FragmentInProgress),
                Some((_, so_far)) => Ok([so_far.as_slice(), &data].concat()),
                None => Ok(data.to_vec()),
            })
            .and_then(|message| {
                // Text so far must be UTF-8, or stop inside a code point while more follows.
                let utf8 = std::str::from_utf8(&message).map_or_else(|e| !fin && e.error_len().is_none(), |_| true);
                if kind == MessageKind::Text && !utf8 {
                    Err(SendError::InvalidUtf8)
                } else {
                    Ok(message)
                }
            });
        let result = connection.send_fragment(kind, data, fin);
        assert_eq!(result, expected.as_ref().map(|_| ()).map_err(Clone::clone));
        let Ok(message) = expected else { return };
        if !fin {
            self.fragmented = Some((kind, message));
            return;
        }
        self.fragmented = None;
        self.sent.push(match kind {
            MessageKind::Text => Message::text(String::from_utf8(message).expect("checked UTF-8")),
            MessageKind::Binary => Message::binary(message),
        });
    }

    /// Sends back a message or a part of one, as an echo server does.
    fn echo(&mut self, connection: &mut Connection, event: &Event) {
        match event {
            Event::Message(message) => self.send(connection, message.clone(), How::Send),
            Event::Fragment { kind, data, fin } => self.send_fragment(connection, *kind, data.clone(), *fin),
            _ => {}
        }
    }
}

/// One end: its connection, what it reported, what it wrote that is still in flight.
struct Side {
    connection: Connection,
    events: Vec<Event>,
    /// Written and not yet delivered to the peer.
    out: Wire,
    /// Whether this side was told EOF.
    eof: bool,
    /// Whether it echoes what it receives.
    echo: bool,
    sender: Sender,
}

impl Side {
    fn new(connection: Connection, echo: bool) -> Self {
        Self {
            connection,
            events: Vec::new(),
            out: Wire::default(),
            eof: false,
            echo,
            sender: Sender::default(),
        }
    }

    fn closed(&self) -> Option<&Closed> {
        match self.events.last() {
            Some(Event::Closed(closed)) => Some(closed.as_ref()),
            _ => None,
        }
    }

    /// Pulls every transmit and event (echoing); once closed, the connection says so.
    fn collect(&mut self) {
        let (echo, sender) = (self.echo, &mut self.sender);
        pump_answering(
            &mut self.connection,
            &mut self.out,
            &mut self.events,
            |connection, event| {
                if echo {
                    sender.echo(connection, event);
                }
            },
        );
        if self.closed().is_some() {
            assert_eq!(self.connection.state(), State::Closed);
            assert!(!self.connection.io_state().can_send());
            // The only deadline left is the linger of the end rule (see
            // core/tests/end_of_connection.rs), which a later time step ends.
        }
    }

    fn send(&mut self, message: Message, how: How) {
        self.sender.send(&mut self.connection, message, how);
    }

    fn send_fragment(&mut self, kind: MessageKind, data: Vec<u8>, fin: bool) {
        self.sender
            .send_fragment(&mut self.connection, kind, Bytes::from(data), fin);
    }

    fn ping(&mut self, len: u8) {
        let len = usize::from(len);
        let expected = check_open(&self.connection).and(if len > 125 {
            Err(SendError::ControlPayloadTooLong(len))
        } else {
            Ok(())
        });
        assert_eq!(self.connection.ping(Bytes::from(vec![len as u8; len])), expected);
    }

    fn close(&mut self, now: Instant, code: u16, reason_len: u8) {
        let code = CloseCode::new(code);
        let reason = "é".repeat(usize::from(reason_len / 2)) + if reason_len % 2 == 1 { "a" } else { "" };
        let expected = check_open(&self.connection).and(if !code.is_sendable() {
            Err(SendError::InvalidCloseCode(code.as_u16()))
        } else if reason.len() > 123 {
            Err(SendError::CloseReasonTooLong(reason.len()))
        } else {
            Ok(())
        });
        assert_eq!(self.connection.close(now, code, &reason), expected);
    }
}

struct Pair {
    sides: [Side; 2],
    now: Instant,
    /// Whether bytes were corrupted or a transport closed early.
    lossy: bool,
}

impl Pair {
    /// Connects a client and a server through the real handshakes.
    fn new(input: &Input) -> Self {
        let now = Instant::now();
        let client_deflate = (input.flags & 4 != 0).then_some(input.deflate[0]);
        let server_deflate = (input.flags & 8 != 0).then_some(input.deflate[1]);
        let (client, server) = connect(
            config(input.flags & 1 != 0, client_deflate, input.frame_size),
            config(input.flags & 2 != 0, server_deflate, input.frame_size),
            now,
        );
        assert_eq!(
            client.is_compressed(),
            client_deflate.is_some() && server_deflate.is_some()
        );
        Self {
            sides: [
                Side::new(client, input.flags & 0x30 == 0x10),
                Side::new(server, input.flags & 0x30 == 0x30),
            ],
            now,
            lossy: false,
        }
    }

    fn collect(&mut self) {
        self.sides.iter_mut().for_each(Side::collect);
    }

    /// Delivers up to `max_bytes` in flight to side `to`, then its peer's shutdown as EOF
    /// once nothing is left in flight. Returns whether anything moved.
    fn deliver(&mut self, to: usize, max_bytes: usize) -> bool {
        let now = self.now;
        let [client, server] = &mut self.sides;
        let (from, to) = if to == SERVER {
            (client, server)
        } else {
            (server, client)
        };
        let bytes: Vec<u8> = from.out.bytes.drain(..max_bytes.min(from.out.bytes.len())).collect();
        to.connection.handle_data(now, &bytes);
        let eof = from.out.bytes.is_empty() && from.out.shutdown && !to.eof;
        if eof {
            to.eof = true;
            to.connection.handle_eof(now);
        }
        self.collect();
        eof || !bytes.is_empty()
    }

    /// Delivers everything both ways until nothing moves.
    fn settle(&mut self) {
        for _ in 0..SETTLE_STEPS {
            let to_server = self.deliver(SERVER, usize::MAX);
            let to_client = self.deliver(CLIENT, usize::MAX);
            if !to_server && !to_client {
                return;
            }
        }
        panic!("the pair did not settle within {SETTLE_STEPS} steps");
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        // Early calls are harmless, so fire both whatever their deadlines.
        for side in &mut self.sides {
            side.connection.handle_timeout(now);
        }
        self.collect();
    }

    fn apply(&mut self, op: Op) {
        let side = |client: bool| if client { CLIENT } else { SERVER };
        match op {
            Op::SendText {
                client,
                how,
                chars,
                seed,
            } => self.sides[side(client)].send(Message::text(text(chars, seed)), How::from(how)),
            Op::SendBinary { client, how, len, seed } => {
                self.sides[side(client)].send(Message::binary(binary(len, seed)), How::from(how))
            }
            Op::SendFragment {
                client,
                text,
                len,
                skew,
                fin,
            } => {
                let data = FRAGMENT_TEXT
                    .bytes()
                    .cycle()
                    .skip(usize::from(skew) % FRAGMENT_TEXT.len())
                    .take(usize::from(len))
                    .collect();
                let kind = if text { MessageKind::Text } else { MessageKind::Binary };
                self.sides[side(client)].send_fragment(kind, data, fin);
            }
            Op::Ping { client, len } => self.sides[side(client)].ping(len),
            Op::Close {
                client,
                code,
                reason_len,
            } => self.sides[side(client)].close(self.now, code, reason_len),
            Op::Deliver { to_server, max_bytes } => {
                self.deliver(side(!to_server), usize::from(max_bytes));
            }
            Op::CorruptByte { to_server, index, xor } => {
                let bytes = &mut self.sides[side(to_server)].out.bytes;
                if !bytes.is_empty() && xor != 0 {
                    let index = usize::from(index) % bytes.len();
                    bytes[index] ^= xor;
                    self.lossy = true;
                }
            }
            Op::AdvanceTime { millis } => self.advance(Duration::from_millis(millis.into())),
            Op::Eof { client } => {
                let side = &mut self.sides[side(client)];
                if !side.eof && side.closed().is_none() {
                    side.eof = true;
                    side.connection.handle_eof(self.now);
                    self.lossy = true;
                }
            }
        }
        self.collect();
    }

    /// Settles, closes from the client, and checks how both sides ended.
    fn finish(mut self) {
        self.settle();
        let client = &mut self.sides[CLIENT];
        let expected = check_open(&client.connection);
        assert_eq!(client.connection.close(self.now, CloseCode::NORMAL, "done"), expected);
        self.collect();
        self.settle();
        let timed_out = self.sides.iter().any(|side| {
            side.closed()
                .is_some_and(|closed| matches!(closed.reason, CloseReason::TimedOut(_)))
        });
        if !self.lossy && !timed_out {
            // Nothing lost: a clean close on both sides, and every message arrived in order.
            let [client, server] = &self.sides;
            let (Some(client_closed), Some(server_closed)) = (client.closed(), server.closed()) else {
                panic!(
                    "a lossless pair did not close: {:?} / {:?}",
                    client.events, server.events
                )
            };
            assert!(
                client_closed.is_clean() && server_closed.is_clean(),
                "{client_closed:?} / {server_closed:?}"
            );
            assert_eq!(client_closed.sent, server_closed.received);
            assert_eq!(server_closed.sent, client_closed.received);
            assert_eq!(
                messages(&reassembled(&server.events)),
                client.sender.sent,
                "client to server"
            );
            assert_eq!(
                messages(&reassembled(&client.events)),
                server.sender.sent,
                "server to client"
            );
        }
        // Whatever happened, the timers end both sides.
        for _ in 0..4 {
            if self.sides.iter().all(|side| side.closed().is_some()) {
                break;
            }
            self.advance(Duration::from_secs(3600));
            self.settle();
        }
        for side in &self.sides {
            assert!(side.closed().is_some(), "a side never closed: {:?}", side.events);
            check_events(&side.events, side.connection.config().get_max_message_size());
        }
    }
}

fuzz_target!(|input: Input| {
    let mut pair = Pair::new(&input);
    for op in input.ops.into_iter().take(MAX_OPS) {
        pair.apply(op);
    }
    pair.finish();
});
