//! `ProxyHandshake` (HTTP CONNECT, SOCKS5 with and without a password, socks5h and
//! socks5) fed an arbitrary reply, whole and in arbitrary chunks, then EOF or the
//! deadline: the same outcome both ways, exactly one outcome in the end, only the
//! protocol's requests written, and once connected every byte after the reply kept, in
//! order, as a reference parser of the reply formats says.
#![no_main]

use std::time::Instant;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsflow::{Config, ProxyError, ProxyEvent, ProxyHandshake, ProxyUrl, Transmit};
use wsflow_fuzz::{chunks, MAX_HANDSHAKE_INPUT};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Selects the proxy (see `PROXIES`).
    proxy: u8,
    /// Selects `max_handshake_size` (64 to 4,144 bytes) and `max_headers` (1 to 16).
    limit: u8,
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    /// Whether the proxy closes after the data (else the deadline passes).
    eof: bool,
    data: &'a [u8],
}

/// The proxies, and the target host for each.
const PROXIES: [(&str, &str); 5] = [
    ("http://proxy:3128", "example.com"),
    ("http://user:pw@proxy:3128", "[::1]"),
    ("socks5h://proxy", "example.com"),
    ("socks5h://user:pw@proxy", "example.com"),
    ("socks5://user:pw@proxy", "192.0.2.1"),
];

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    written: Vec<u8>,
    events: Vec<ProxyEvent>,
    leftover: Vec<u8>,
}

fn run(proxy: &ProxyUrl, host: &str, config: &Config, data: &[u8], sizes: &[u8], eof: bool) -> Outcome {
    let now = Instant::now();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut handshake = ProxyHandshake::new(proxy, host, 443, config, now).expect("a valid target");
    let deadline = handshake.poll_timeout().expect("a deadline while running");
    let (mut written, mut events) = (Vec::new(), Vec::new());
    let mut drain = |handshake: &mut ProxyHandshake, events: &mut Vec<ProxyEvent>| {
        while let Some(transmit) = handshake.poll_transmit() {
            let Transmit::Data(bytes) = transmit else {
                panic!("a proxy handshake shut down")
            };
            assert!(events.is_empty(), "wrote after its outcome");
            written.extend_from_slice(&bytes);
        }
        events.extend(std::iter::from_fn(|| handshake.poll_event()));
    };
    drain(&mut handshake, &mut events);
    for chunk in chunks(data, sizes) {
        handshake.handle_data(now, chunk);
        drain(&mut handshake, &mut events);
    }
    let connected = handshake.is_connected();
    let decided = !events.is_empty();
    if eof {
        handshake.handle_eof(now);
    } else {
        handshake.handle_timeout(deadline);
    }
    drain(&mut handshake, &mut events);
    assert_eq!(handshake.poll_timeout(), None, "a deadline after the outcome");
    let [outcome] = &events[..] else {
        panic!("not exactly one outcome: {events:?}")
    };
    assert_eq!(connected, *outcome == ProxyEvent::Connected);
    if !decided {
        let end = if eof {
            ProxyError::UnexpectedEof
        } else {
            ProxyError::TimedOut
        };
        assert_eq!(*outcome, ProxyEvent::Failed(end), "the end of an undecided handshake");
    }
    Outcome {
        written,
        events,
        leftover: handshake.into_leftover().to_vec(),
    }
}

/// The length of a complete reply at the front of `data`, as the formats define it:
/// `None` when it is not a successful and complete one.
fn reference_reply_len(proxy: &ProxyUrl, data: &[u8], config: &Config) -> Option<usize> {
    if proxy.kind() == wsflow::ProxyKind::Http {
        let end = data.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
        return (end <= config.get_max_handshake_size()).then_some(end);
    }
    let method = data.get(..2)?;
    let mut at = 2;
    if method == [5, 2] && proxy.credentials().is_some() {
        if data.get(2..4)? != [1, 0] {
            return None;
        }
        at = 4;
    } else if method != [5, 0] {
        return None;
    }
    let reply = data.get(at..at + 4)?;
    if reply[..2] != [5, 0] {
        return None;
    }
    let address = match reply[3] {
        1 => 4,
        4 => 16,
        3 => 1 + usize::from(*data.get(at + 4)?),
        _ => return None,
    };
    let end = at + 4 + address + 2;
    (end <= data.len()).then_some(end)
}

fuzz_target!(|input: Input<'_>| {
    if input.data.len() > MAX_HANDSHAKE_INPUT {
        return;
    }
    let (url, host) = PROXIES[usize::from(input.proxy) % PROXIES.len()];
    let proxy = ProxyUrl::parse(url).expect("a valid proxy URL");
    let mut config = Config::default();
    config
        .max_handshake_size(64 + usize::from(input.limit) * 16)
        .max_headers(1 + usize::from(input.limit % 16));

    let whole = run(&proxy, host, &config, input.data, &[], input.eof);
    let chunked = run(&proxy, host, &config, input.data, &input.sizes, input.eof);
    assert_eq!(whole, chunked, "chunking changed the outcome");

    // Only the protocol's requests: at most the CONNECT head, or the three SOCKS messages.
    assert!(
        !whole.written.is_empty() && whole.written.len() <= 300,
        "{:?}",
        whole.written
    );
    if whole.events == [ProxyEvent::Connected] {
        let reply_len = reference_reply_len(&proxy, input.data, &config).expect("connected on a reply that is not one");
        assert_eq!(whole.leftover, input.data[reply_len..], "the bytes after the reply");
        if proxy.kind() == wsflow::ProxyKind::Http {
            assert!(
                input.data.starts_with(b"HTTP/1.") && input.data[9] == b'2',
                "a tunnel without a 2xx"
            );
        }
    } else {
        assert!(whole.leftover.is_empty(), "kept bytes without a tunnel");
    }
});
