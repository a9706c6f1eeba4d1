//! `send_*_copied` against `send` op by op (the same results, chunks, queued bytes and
//! messages), at the size boundaries, and the order of own-chunk frames with pongs between.

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use support::*;
use wsflow::frame::OpCode;
use wsflow::{CloseCode, Config, Connection, Message, MessageKind, Transmit};

#[derive(Clone, Debug)]
enum Op {
    /// (client side, text, len, multi-byte text)
    Send(bool, bool, usize, bool),
    Ping(bool, u8),
    Pong(bool, u8),
    Fragment(bool, bool, usize, bool),
    Close(bool),
    /// Pull one transmit from a side (partial drain: pongs slip in at frame starts).
    PollOne(bool),
    /// Move everything in flight to the other sides (pings get auto-pongs queued).
    Step,
    /// Pull events of a side.
    Events(bool),
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..130,
        4_090usize..4_103,
        65_530usize..65_540,
        Just(70_000usize),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), any::<bool>(), len(), any::<bool>()).prop_map(|(c, t, l, m)| Op::Send(c, t, l, m)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(c, n)| Op::Ping(c, n)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(c, n)| Op::Pong(c, n)),
        2 => (any::<bool>(), any::<bool>(), len(), any::<bool>()).prop_map(|(c, t, l, f)| Op::Fragment(c, t, l, f)),
        1 => any::<bool>().prop_map(Op::Close),
        3 => any::<bool>().prop_map(Op::PollOne),
        2 => Just(Op::Step),
        1 => any::<bool>().prop_map(Op::Events),
    ]
}

fn payload_of(text: bool, len: usize, multibyte: bool, salt: usize) -> Message {
    if text {
        let s: String = if multibyte {
            "é€😀a"
                .chars()
                .cycle()
                .scan(0, |n, c| {
                    *n += c.len_utf8();
                    (*n <= len).then_some(c)
                })
                .collect()
        } else {
            (0..len).map(|i| (b'a' + ((i + salt) % 26) as u8) as char).collect()
        };
        Message::text(s)
    } else {
        Message::binary(Bytes::from((0..len).map(|i| (i * 31 + salt) as u8).collect::<Vec<_>>()))
    }
}

/// Every transmit of a connection, chunk by chunk.
fn chunks(c: &mut Connection) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_transmit() {
        match t {
            Transmit::Data(b) => out.push(b.to_vec()),
            Transmit::Shutdown => out.push(b"<shutdown>".to_vec()),
        }
    }
    out
}

fn side(pair: &mut Pair, client: bool) -> &mut Connection {
    if client {
        &mut pair.client
    } else {
        &mut pair.server
    }
}

fn run(config: Config, ops: &[Op]) -> Result<(), TestCaseError> {
    // Same handshake, same entropy: the same masks in both pairs.
    let mut owned = Pair::new(config.clone());
    let mut copied = Pair::new(config);
    let mut owned_wire: [Vec<Vec<u8>>; 2] = Default::default();
    let mut copied_wire: [Vec<Vec<u8>>; 2] = Default::default();
    for (i, op) in ops.iter().enumerate() {
        match op {
            &Op::Send(client, text, len, mb) => {
                let message = payload_of(text, len, mb, i);
                let a = side(&mut owned, client).send(message.clone());
                let b = match &message {
                    Message::Text(t) => side(&mut copied, client).send_copied(t.as_str()),
                    Message::Binary(d) => side(&mut copied, client).send_copied(&d[..]),
                };
                prop_assert_eq!(a, b, "op {} {:?}", i, op);
            }
            &Op::Ping(client, n) => {
                let p = Bytes::from(vec![n; usize::from(n % 10)]);
                let a = side(&mut owned, client).ping(p.clone());
                let b = side(&mut copied, client).ping(p);
                prop_assert_eq!(a, b);
            }
            &Op::Pong(client, n) => {
                let p = Bytes::from(vec![n; usize::from(n % 10)]);
                let a = side(&mut owned, client).pong(p.clone());
                let b = side(&mut copied, client).pong(p);
                prop_assert_eq!(a, b);
            }
            &Op::Fragment(client, text, len, fin) => {
                let kind = if text { MessageKind::Text } else { MessageKind::Binary };
                let data = Bytes::from(vec![b'x'; len]);
                let a = side(&mut owned, client).send_fragment(kind, data.clone(), fin);
                let b = side(&mut copied, client).send_fragment(kind, data, fin);
                prop_assert_eq!(a, b);
            }
            &Op::Close(client) => {
                let (now_a, now_b) = (owned.now, copied.now);
                let a = side(&mut owned, client).close(now_a, CloseCode::NORMAL, "bye");
                let b = side(&mut copied, client).close(now_b, CloseCode::NORMAL, "bye");
                prop_assert_eq!(a, b);
            }
            &Op::PollOne(client) => {
                let a = side(&mut owned, client).poll_transmit();
                let b = side(&mut copied, client).poll_transmit();
                let bytes = |t: Option<Transmit>| match t {
                    Some(Transmit::Data(b)) => Some(b.to_vec()),
                    Some(Transmit::Shutdown) => Some(b"<shutdown>".to_vec()),
                    None => None,
                };
                let (a, b) = (bytes(a), bytes(b));
                prop_assert_eq!(&a, &b, "op {}", i);
                if let Some(a) = a {
                    owned_wire[usize::from(client)].push(a.clone());
                    copied_wire[usize::from(client)].push(b.unwrap());
                    // Deliver to the peer, as `step` would.
                    let (to_a, to_b) = if client {
                        (&mut owned.to_server, &mut copied.to_server)
                    } else {
                        (&mut owned.to_client, &mut copied.to_client)
                    };
                    if a != b"<shutdown>" {
                        to_a.extend_from_slice(&a);
                        to_b.extend_from_slice(&a);
                    }
                }
            }
            Op::Step => {
                for client in [false, true] {
                    let a = chunks(side(&mut owned, client));
                    let b = chunks(side(&mut copied, client));
                    prop_assert_eq!(&a, &b, "chunks differ at op {}", i);
                    for c in &a {
                        if c != b"<shutdown>" {
                            if client {
                                owned.to_server.extend_from_slice(c)
                            } else {
                                owned.to_client.extend_from_slice(c)
                            }
                        } else if client {
                            owned.client_shut = true
                        } else {
                            owned.server_shut = true
                        }
                    }
                    for c in &b {
                        if c != b"<shutdown>" {
                            if client {
                                copied.to_server.extend_from_slice(c)
                            } else {
                                copied.to_client.extend_from_slice(c)
                            }
                        } else if client {
                            copied.client_shut = true
                        } else {
                            copied.server_shut = true
                        }
                    }
                    owned_wire[usize::from(client)].extend(a);
                    copied_wire[usize::from(client)].extend(b);
                }
                owned.step();
                copied.step();
            }
            &Op::Events(client) => {
                let a = drain_events(side(&mut owned, client));
                let b = drain_events(side(&mut copied, client));
                prop_assert_eq!(&a, &b);
                if client {
                    owned.client_events.extend(a);
                    copied.client_events.extend(b)
                } else {
                    owned.server_events.extend(a);
                    copied.server_events.extend(b)
                }
            }
        }
        for client in [false, true] {
            prop_assert_eq!(
                side(&mut owned, client).buffered_amount(),
                side(&mut copied, client).buffered_amount(),
                "buffered_amount, op {} {:?}",
                i,
                op
            );
            prop_assert_eq!(side(&mut owned, client).state(), side(&mut copied, client).state());
        }
    }
    for client in [false, true] {
        let a = chunks(side(&mut owned, client));
        let b = chunks(side(&mut copied, client));
        prop_assert_eq!(&a, &b);
        owned_wire[usize::from(client)].extend(a);
        copied_wire[usize::from(client)].extend(b);
    }
    prop_assert_eq!(&owned_wire, &copied_wire);
    owned.drive();
    copied.drive();
    prop_assert_eq!(owned.server_messages(), copied.server_messages());
    prop_assert_eq!(owned.client_messages(), copied.client_messages());
    // The whole wire stream is well-formed frames (no pong inside a data frame).
    for client in [false, true] {
        let wire: Vec<u8> = owned_wire[usize::from(client)]
            .iter()
            .filter(|c| c.as_slice() != b"<shutdown>")
            .flatten()
            .copied()
            .collect();
        decode_frames(&wire);
    }
    Ok(())
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![
            Just(None),
            Just(Some(0usize)),
            (1usize..200).prop_map(Some),
            (4_090usize..4_103).prop_map(Some),
            Just(Some(65_536usize))
        ],
        proptest::option::of(prop_oneof![
            Just(0usize),
            1usize..200,
            4_090usize..4_103,
            Just(100_000usize)
        ]),
    )
        .prop_map(|(size, deflate)| {
            let mut config = Config::default();
            config.outgoing_frame_size(size);
            if let Some(threshold) = deflate {
                let mut d = wsflow::DeflateConfig::default();
                d.threshold(threshold);
                config.deflate(Some(d));
            }
            config
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn copied_sends_match_owned_sends_op_by_op(config in config(), ops in proptest::collection::vec(op(), 0..24)) {
        run(config, &ops)?;
    }
}

/// Fixed sizes around every boundary, both roles, several frame sizes and thresholds.
#[test]
fn copied_sends_match_at_boundaries() {
    let sizes = [
        0, 1, 3, 4, 5, 125, 126, 127, 128, 129, 4095, 4096, 4097, 65535, 65536, 65537,
    ];
    let frame_sizes = [
        None,
        Some(0),
        Some(1),
        Some(4095),
        Some(4096),
        Some(4097),
        Some(1 << 20),
    ];
    let thresholds = [None, Some(0), Some(4096), Some(usize::MAX)];
    for fs in frame_sizes {
        for th in thresholds {
            let mut config = Config::default();
            config.outgoing_frame_size(fs);
            if let Some(t) = th {
                let mut d = wsflow::DeflateConfig::default();
                d.threshold(t);
                config.deflate(Some(d));
            }
            let mut ops = vec![Op::Send(false, false, 10, false), Op::Ping(true, 3)];
            for (k, &s) in sizes.iter().enumerate() {
                for client in [false, true] {
                    ops.push(Op::Send(client, k % 2 == 0, s, k % 3 == 0));
                    ops.push(Op::Send(client, k % 2 == 1, s, true));
                    ops.push(Op::Pong(client, 1));
                }
                if k % 4 == 0 {
                    ops.push(Op::PollOne(true));
                    ops.push(Op::Step);
                }
            }
            ops.push(Op::Fragment(true, true, 5000, false));
            ops.push(Op::Send(true, true, 5, false)); // FragmentInProgress
            ops.push(Op::Close(true));
            ops.push(Op::Send(true, false, 5000, false)); // Closed
            ops.push(Op::Step);
            ops.push(Op::Send(false, false, 5000, false)); // CloseReceived: still may send
            ops.push(Op::Events(false));
            run(config, &ops).unwrap_or_else(|e| panic!("{fs:?} {th:?}: {e}"));
        }
    }
}

/// Small, big (own chunk), small, with pings answered between: bytes in order and no pong
/// inside a data frame, pulled one transmit at a time.
#[test]
fn own_chunks_keep_order_and_pongs_at_frame_starts() {
    for client_role in [false, true] {
        let mut config = Config::default();
        config.outgoing_frame_size(Some(5000));
        let mut c = connection_in_role(&config, client_role);
        let now = std::time::Instant::now();
        let ping = |p: &[u8]| {
            if client_role {
                frame(OpCode::Ping, true, p, None)
            } else {
                client_frame(OpCode::Ping, true, p)
            }
        };
        let mut expected = Vec::new();
        c.send_copied(b"a").unwrap();
        expected.push((OpCode::Binary, b"a".to_vec()));
        c.handle_data(now, &ping(b"p1"));
        let big: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        c.send(Message::binary(big.clone())).unwrap();
        c.send_copied(&big[..4096]).unwrap();
        c.ping(Bytes::from_static(b"q")).unwrap();
        c.send_copied("small").unwrap();
        let mut wire = Vec::new();
        let mut fed = 1;
        while let Some(t) = c.poll_transmit() {
            if let Transmit::Data(b) = t {
                let is_pong = b[0] == 0x8A;
                wire.extend_from_slice(&b);
                if !is_pong {
                    // A ping after every other transmit (a header alone among them): its
                    // pong may only go out at a frame start.
                    c.handle_data(now, &ping(b"p2"));
                    fed += 1;
                }
            }
        }
        let frames = decode_frames(&wire);
        let kinds: Vec<(OpCode, bool, usize)> = frames.iter().map(|f| (f.opcode, f.fin, f.payload.len())).collect();
        // pongs anywhere at frame starts; the rest in order
        let data: Vec<_> = frames
            .iter()
            .filter(|f| f.opcode != OpCode::Pong)
            .map(|f| (f.opcode, f.payload.clone()))
            .collect();
        assert_eq!(data.len(), 6, "{kinds:?}");
        assert_eq!(data[0], expected[0]);
        assert_eq!(data[1].0, OpCode::Binary);
        assert_eq!(data[1].1, big[..5000]);
        assert_eq!(data[2], (OpCode::Continuation, big[5000..].to_vec()));
        assert_eq!(data[3], (OpCode::Binary, big[..4096].to_vec()));
        assert_eq!(data[4], (OpCode::Ping, b"q".to_vec()));
        assert_eq!(data[5], (OpCode::Text, b"small".to_vec()));
        assert_eq!(
            frames.iter().filter(|f| f.opcode == OpCode::Pong).count(),
            fed,
            "{kinds:?}"
        );
    }
}
