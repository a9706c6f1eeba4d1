//! The sans-IO proxy handshakes (HTTP `CONNECT`, SOCKS5 with and without a password):
//! what they send, what they make of any reply under any chunking, their limits and their
//! deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use wsflow::{Config, ProxyError, ProxyEvent, ProxyHandshake, ProxyUrl, SocksReply, Transmit};

/// What a handshake did with a reply fed in chunks: the bytes it wrote, its events, and
/// the bytes it kept for the tunnel.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    written: Vec<u8>,
    events: Vec<ProxyEvent>,
    leftover: Bytes,
}

fn drain(handshake: &mut ProxyHandshake, written: &mut Vec<u8>) {
    while let Some(transmit) = handshake.poll_transmit() {
        match transmit {
            Transmit::Data(bytes) => written.extend_from_slice(&bytes),
            other => panic!("a proxy handshake transmitted {other:?}"),
        }
    }
}

/// Feeds `reply` cut at `cuts` (offsets, any order, out of range ones ignored).
fn run(proxy: &str, host: &str, port: u16, config: &Config, reply: &[u8], cuts: &[usize]) -> Outcome {
    let now = Instant::now();
    let proxy = ProxyUrl::parse(proxy).unwrap();
    let mut handshake = ProxyHandshake::new(&proxy, host, port, config, now).unwrap();
    let mut written = Vec::new();
    let mut events = Vec::new();
    drain(&mut handshake, &mut written);
    let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&cut| cut < reply.len()).collect();
    cuts.sort_unstable();
    cuts.push(reply.len());
    let mut start = 0;
    for cut in cuts {
        handshake.handle_data(now, &reply[start..cut]);
        start = cut;
        drain(&mut handshake, &mut written);
        events.extend(std::iter::from_fn(|| handshake.poll_event()));
    }
    Outcome {
        written,
        events,
        leftover: handshake.into_leftover(),
    }
}

const HTTP_REQUEST: &[u8] = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
const HTTP_AUTH_REQUEST: &[u8] = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
    Proxy-Authorization: Basic dXNlcjpwQHNz\r\n\r\n";
const SOCKS_CONNECT_NAME: &[u8] = &[
    5, 1, 0, 3, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o', b'm', 1, 187,
];
const SOCKS_OK: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x1F, 0x90];
const SOCKS_OK_NAME: &[u8] = &[5, 0, 0, 3, 3, b'a', b'b', b'c', 0, 80];

/// A proxy, the reply it gives, and what the client must make of it.
struct Scenario {
    proxy: &'static str,
    reply: Vec<u8>,
    written: Vec<u8>,
    event: ProxyEvent,
    /// Whether the tail of the reply is kept for the tunnel.
    tunnel: bool,
}

fn scenarios() -> Vec<Scenario> {
    let cat = |parts: &[&[u8]]| parts.concat();
    let refused = |status, reason: &str, authenticate: Option<&str>| {
        ProxyEvent::Failed(ProxyError::HttpRefused {
            status,
            reason: reason.into(),
            authenticate: authenticate.map(Into::into),
        })
    };
    vec![
        Scenario {
            proxy: "http://proxy:3128",
            reply: b"HTTP/1.1 200 Connection established\r\nProxy-Agent: t\r\n\r\n".to_vec(),
            written: HTTP_REQUEST.to_vec(),
            event: ProxyEvent::Connected,
            tunnel: true,
        },
        Scenario {
            proxy: "http://user:p%40ss@proxy:3128",
            reply: b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
            written: HTTP_AUTH_REQUEST.to_vec(),
            event: ProxyEvent::Connected,
            tunnel: true,
        },
        Scenario {
            proxy: "http://proxy:3128",
            reply: b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 3\r\n\r\nno!"
                .to_vec(),
            written: HTTP_REQUEST.to_vec(),
            event: refused(407, "Proxy Authentication Required", Some("Basic")),
            tunnel: false,
        },
        Scenario {
            proxy: "http://proxy:3128",
            reply: b"HTTP/1.1 403 Access denied\r\n\r\n".to_vec(),
            written: HTTP_REQUEST.to_vec(),
            event: refused(403, "Access denied", None),
            tunnel: false,
        },
        Scenario {
            proxy: "http://proxy:3128",
            reply: b"SSH-2.0-OpenSSH\r\n".to_vec(),
            written: HTTP_REQUEST.to_vec(),
            event: ProxyEvent::Failed(ProxyError::Malformed("not an HTTP response")),
            tunnel: false,
        },
        Scenario {
            proxy: "socks5h://proxy",
            reply: cat(&[&[5, 0], SOCKS_OK]),
            written: cat(&[&[5, 1, 0], SOCKS_CONNECT_NAME]),
            event: ProxyEvent::Connected,
            tunnel: true,
        },
        Scenario {
            proxy: "socks5h://user:p%40ss@proxy",
            reply: cat(&[&[5, 2], &[1, 0], SOCKS_OK_NAME]),
            written: cat(&[
                &[5, 2, 0, 2],
                &[1, 4, b'u', b's', b'e', b'r', 4, b'p', b'@', b's', b's'],
                SOCKS_CONNECT_NAME,
            ]),
            event: ProxyEvent::Connected,
            tunnel: true,
        },
        Scenario {
            // Credentials offered, but the proxy needs none: they are not sent.
            proxy: "socks5h://user:pw@proxy",
            reply: cat(&[&[5, 0], SOCKS_OK]),
            written: cat(&[&[5, 2, 0, 2], SOCKS_CONNECT_NAME]),
            event: ProxyEvent::Connected,
            tunnel: true,
        },
        Scenario {
            proxy: "socks5h://user:bad@proxy",
            reply: vec![5, 2, 1, 1],
            written: cat(&[&[5, 2, 0, 2], &[1, 4, b'u', b's', b'e', b'r', 3, b'b', b'a', b'd']]),
            event: ProxyEvent::Failed(ProxyError::SocksAuthFailed(1)),
            tunnel: false,
        },
        Scenario {
            proxy: "socks5h://proxy",
            reply: vec![5, 0xFF],
            written: vec![5, 1, 0],
            event: ProxyEvent::Failed(ProxyError::SocksNoAcceptableMethod),
            tunnel: false,
        },
        Scenario {
            proxy: "socks5h://proxy",
            reply: vec![5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0],
            written: cat(&[&[5, 1, 0], SOCKS_CONNECT_NAME]),
            event: ProxyEvent::Failed(ProxyError::SocksRefused(SocksReply::HostUnreachable)),
            tunnel: false,
        },
        Scenario {
            proxy: "socks5h://proxy",
            reply: b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            written: vec![5, 1, 0],
            event: ProxyEvent::Failed(ProxyError::Malformed("not a SOCKS5 reply")),
            tunnel: false,
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the chunking, every scenario gives the same requests, the one outcome, and
    /// (when connected) every byte after the reply for the tunnel.
    #[test]
    fn any_chunking_gives_the_same_outcome(
        which in 0usize..12,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(0usize..128, 0..12),
    ) {
        let scenarios = scenarios();
        let scenario = &scenarios[which % scenarios.len()];
        let reply = [&scenario.reply[..], &tail[..]].concat();
        let config = Config::default();
        let outcome = run(scenario.proxy, "example.com", 443, &config, &reply, &cuts);
        let byte_by_byte: Vec<usize> = (1..reply.len()).collect();
        prop_assert_eq!(&outcome, &run(scenario.proxy, "example.com", 443, &config, &reply, &byte_by_byte));
        prop_assert_eq!(&outcome.written, &scenario.written);
        prop_assert_eq!(&outcome.events, &vec![scenario.event.clone()]);
        let kept: &[u8] = if scenario.tunnel { &tail } else { &[] };
        prop_assert_eq!(&outcome.leftover[..], kept);
    }

    /// Any reply, in any chunks: no panic, at most one outcome, nothing kept unless
    /// connected, and never more than the limits.
    #[test]
    fn any_reply_ends_in_at_most_one_outcome(
        which in 0usize..12,
        reply in proptest::collection::vec(any::<u8>(), 0..600),
        prefix in any::<bool>(),
        cuts in proptest::collection::vec(0usize..700, 0..12),
    ) {
        let scenarios = scenarios();
        let scenario = &scenarios[which % scenarios.len()];
        // Half the time, start like a real reply so that the later stages are reached.
        let reply = if prefix {
            [&scenario.reply[..scenario.reply.len() / 2], &reply[..]].concat()
        } else {
            reply
        };
        let mut config = Config::default();
        config.max_handshake_size(256).max_headers(4);
        let outcome = run(scenario.proxy, "example.com", 443, &config, &reply, &cuts);
        prop_assert!(outcome.events.len() <= 1, "{:?}", outcome.events);
        if outcome.events != [ProxyEvent::Connected] {
            prop_assert!(outcome.leftover.is_empty());
        }
        prop_assert!(outcome.leftover.len() <= 64 << 10);
    }
}

#[test]
fn a_head_over_the_limit_fails_at_the_limit() {
    let mut config = Config::default();
    config.max_handshake_size(64);
    let head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
    let outcome = run("http://p", "h", 80, &config, head.as_bytes(), &[64]);
    assert_eq!(outcome.events, [ProxyEvent::Failed(ProxyError::TooLarge)]);
    // A head within the limit, followed by more than the limit: the tunnel's bytes are
    // kept up to 64 KiB.
    let big = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &[7; 70 << 10]].concat();
    let outcome = run("http://p", "h", 80, &config, &big, &[]);
    assert_eq!(outcome.events, [ProxyEvent::Failed(ProxyError::TooLarge)]);
    let fits = [&b"HTTP/1.1 200 OK\r\n\r\n"[..], &[7; 60 << 10]].concat();
    let outcome = run("http://p", "h", 80, &config, &fits, &[30]);
    assert_eq!(outcome.events, [ProxyEvent::Connected]);
    assert_eq!(outcome.leftover.len(), 60 << 10);
}

#[test]
fn a_silent_proxy_times_out_at_the_deadline_and_a_closing_one_fails_at_once() {
    let now = Instant::now();
    let mut config = Config::default();
    config.handshake_timeout(Duration::from_secs(3));
    let proxy = ProxyUrl::parse("socks5h://p").unwrap();
    let mut handshake = ProxyHandshake::new(&proxy, "h", 80, &config, now).unwrap();
    let deadline = handshake.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(3));
    handshake.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(handshake.poll_event(), None);
    handshake.handle_data(now, &[5]);
    handshake.handle_timeout(deadline);
    assert_eq!(handshake.poll_event(), Some(ProxyEvent::Failed(ProxyError::TimedOut)));
    assert_eq!(handshake.poll_timeout(), None);
    handshake.handle_eof(deadline);
    assert_eq!(handshake.poll_event(), None);

    let mut handshake = ProxyHandshake::new(&ProxyUrl::parse("p:1").unwrap(), "h", 80, &config, now).unwrap();
    handshake.handle_data(now, b"HTTP/1.1 200");
    handshake.handle_eof(now);
    assert_eq!(
        handshake.poll_event(),
        Some(ProxyEvent::Failed(ProxyError::UnexpectedEof))
    );
}

#[test]
fn targets_a_proxy_cannot_be_asked_for_are_refused_up_front() {
    let config = Config::default();
    let now = Instant::now();
    let new = |proxy: &str, host: &str| ProxyHandshake::new(&ProxyUrl::parse(proxy).unwrap(), host, 80, &config, now);
    assert!(matches!(
        new("socks5://p", "example.com"),
        Err(ProxyError::InvalidTarget(_))
    ));
    assert!(new("socks5://p", "192.0.2.1").is_ok());
    assert!(matches!(
        new("socks5h://p", &"a".repeat(256)),
        Err(ProxyError::InvalidTarget(_))
    ));
    assert!(matches!(new("http://p", "a\r\nb"), Err(ProxyError::InvalidTarget(_))));
    let long_user = format!("socks5h://{}:x@p", "u".repeat(256));
    assert!(matches!(new(&long_user, "h"), Err(ProxyError::InvalidTarget(_))));
}

#[test]
fn data_after_the_tunnel_opened_is_kept_in_order() {
    let now = Instant::now();
    let proxy = ProxyUrl::parse("socks5h://p").unwrap();
    let mut handshake = ProxyHandshake::new(&proxy, "h", 80, &Config::default(), now).unwrap();
    handshake.handle_data(now, &[5, 0, 5, 0, 0, 1, 1, 2, 3, 4, 0, 80, b'a']);
    assert_eq!(handshake.poll_event(), Some(ProxyEvent::Connected));
    assert!(handshake.is_connected());
    handshake.handle_data(now, b"bc");
    assert_eq!(&handshake.into_leftover()[..], b"abc");
}
