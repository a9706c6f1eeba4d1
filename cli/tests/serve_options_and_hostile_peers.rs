//! `wsflow serve`'s options, and peers that do not play by the rules: the server answers
//! them and goes on serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::{run, spawn, Serve};

fn port_of(url: &str) -> String {
    url.trim_start_matches("ws://").trim_end_matches('/').to_owned()
}

/// Sends `request` on a fresh connection and returns all the server answers (until it
/// closes the connection or 5 s pass).
fn raw_exchange(url: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(port_of(url)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(read @ 1..) = stream.read(&mut buf) {
        answer.extend_from_slice(&buf[..read]);
    }
    answer
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn still_echoes(server: &Serve) {
    let run = run(&["connect", "--once", &server.url], b"still there?\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "still there?\n");
}

#[test]
fn subprotocol_is_chosen_from_the_clients_offer() {
    let server = Serve::start(&["--subprotocol", "chat", "--subprotocol", "superchat"]);
    let run = run(
        &[
            "connect",
            "-1",
            "-v",
            "--subprotocol",
            "x",
            "--subprotocol",
            "superchat",
            &server.url,
        ],
        b"hi\n",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(run.stderr.contains("subprotocol: superchat"), "{}", run.stderr);
}

#[test]
fn connections_past_the_limit_get_503() {
    let server = Serve::start(&["--max-connections", "1"]);
    let mut first = spawn(&["connect", &server.url]);
    first.write(b"holding\n");
    first.wait_for_stdout("holding\n");
    let second = run(&["connect", &server.url], b"");
    assert_eq!(second.code(), 4, "{second:?}");
    assert!(second.stderr.contains("503"), "{}", second.stderr);
    let first = first.finish();
    assert_eq!(first.code(), 0, "{first:?}");
    // The slot is free again once the server's thread is done with the first.
    for _ in 0..100 {
        if run(&["connect", "--once", &server.url], b"again\n").code() == 0 {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("the server still refuses after the first client left");
}

#[test]
fn plain_http_gets_426_and_garbage_gets_400() {
    let server = Serve::start(&[]);
    let answer = raw_exchange(&server.url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        answer.starts_with(b"HTTP/1.1 426 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer = raw_exchange(&server.url, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert!(
        answer.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    still_echoes(&server);
}

#[test]
fn a_frame_claiming_more_than_max_size_is_refused_with_1009() {
    let server = Serve::start(&["--max-size", "1M"]);
    let mut request = UPGRADE.as_bytes().to_vec();
    // A masked binary frame announcing 1 TiB, then a few bytes of it.
    request.extend_from_slice(&[0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9]);
    let answer = raw_exchange(&server.url, &request);
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a 101") + 4;
    assert!(answer.starts_with(b"HTTP/1.1 101 "));
    let close = &answer[head_end..];
    assert_eq!(
        (close[0], &close[2..4]),
        (0x88, &[0x03, 0xf1][..]),
        "close 1009: {close:?}"
    );
    still_echoes(&server);
}

#[test]
fn a_client_that_vanishes_mid_message_does_not_stop_the_server() {
    let server = Serve::start(&["--broadcast"]);
    {
        let mut stream = TcpStream::connect(port_of(&server.url)).unwrap();
        stream.write_all(UPGRADE.as_bytes()).unwrap();
        stream.write_all(&[0x01, 0x85, 1, 2, 3, 4, b'h' ^ 1]).unwrap(); // a fragment, cut
    }
    still_echoes(&server);
}
