//! How `wsflow connect` ends when things go wrong: each way has its exit code and says
//! why on stderr.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use common::{one_shot_server, run, spawn, switching_protocols, Serve};

#[test]
fn refused_port_is_a_connect_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let run = run(&["connect", &format!("ws://127.0.0.1:{port}/")], b"");
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(
        run.stderr.contains("cannot connect") && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn unknown_host_is_a_connect_failure() {
    let run = run(&["connect", "ws://no-such-host.invalid/"], b"");
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(run.stderr.contains("no-such-host.invalid"), "{}", run.stderr);
}

#[test]
fn silent_server_times_out_as_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let run = run(&["connect", "--connect-timeout", "0.5", &url], b"");
    drop(listener);
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(run.stderr.contains("--connect-timeout"), "{}", run.stderr);
}

#[test]
fn rejected_handshake_prints_status_and_body() {
    let url = one_shot_server(|stream, _head| {
        let body = "no token, no socket\n";
        let _ = write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
    });
    let run = run(&["connect", &url], b"hello\n");
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("401 Unauthorized"), "{}", run.stderr);
    assert!(run.stderr.contains("no token, no socket"), "{}", run.stderr);
}

#[test]
fn serve_refuses_another_origin_with_403() {
    let server = Serve::start(&["--origin", "https://good.example"]);
    let refused = run(&["connect", "--origin", "https://evil.example", &server.url], b"");
    assert_eq!(refused.code(), 4, "{refused:?}");
    assert!(
        refused.stderr.contains("403") && refused.stderr.contains("origin not allowed"),
        "{}",
        refused.stderr
    );
    let allowed = run(&["connect", "--origin", "https://good.example", &server.url], b"hi\n");
    assert_eq!(allowed.code(), 0, "{allowed:?}");
    assert_eq!(allowed.out(), "hi\n");
}

#[test]
fn headers_reach_the_server() {
    let url = one_shot_server(|stream, head| {
        let seen = head
            .lines()
            .filter(|line| line.starts_with("X-Test") || line.starts_with("Sec-WebSocket-Protocol"))
            .collect::<Vec<_>>()
            .join(";");
        let _ = write!(
            stream,
            "HTTP/1.1 418 I'm a teapot\r\nContent-Length: {}\r\n\r\n{seen}",
            seen.len()
        );
    });
    let run = run(
        &["connect", "-H", "X-Test: one two", "--subprotocol", "chat", &url],
        b"",
    );
    assert_eq!(run.code(), 4, "{run:?}");
    assert!(run.stderr.contains("X-Test: one two"), "{}", run.stderr);
    assert!(run.stderr.contains("Sec-WebSocket-Protocol: chat"), "{}", run.stderr);
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let run = run(&["connect"], b"");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("Usage"), "{}", run.stderr);
    let run = common::run(&["connect", "-H", "no colon", "ws://127.0.0.1:1/"], b"");
    assert_eq!(run.code(), 2, "{run:?}");
    let run = common::run(&["connect", "http://example.com/"], b"");
    assert_eq!(run.code(), 2, "{run:?}");
    assert!(run.stderr.contains("bad URL"), "{}", run.stderr);
    let run = common::run(&["serve", "--echo", "--broadcast"], b"");
    assert_eq!(run.code(), 2, "{run:?}");
}

#[test]
fn dropped_connection_is_an_abnormal_close() {
    let url = one_shot_server(|stream, head| {
        let _ = stream.write_all(switching_protocols(head).as_bytes());
        thread::sleep(Duration::from_millis(200));
        // Gone without a close frame.
    });
    let run = spawn(&["connect", &url]).wait(); // it ends by itself
    assert_eq!(run.code(), 5, "{run:?}");
    assert!(run.stderr.contains("1006"), "{}", run.stderr);
}

#[test]
fn protocol_error_is_reported_with_the_close_code() {
    let url = one_shot_server(|stream, head| {
        let _ = stream.write_all(switching_protocols(head).as_bytes());
        let _ = stream.write_all(&[0x83, 0x00]); // reserved opcode 3
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    let run = spawn(&["connect", &url]).wait(); // it ends by itself
    assert_eq!(run.code(), 5, "{run:?}");
    assert!(
        run.stderr.contains("protocol error") && run.stderr.contains("1002"),
        "{}",
        run.stderr
    );
}

#[test]
fn server_closing_with_an_error_code_exits_5_with_code_and_reason() {
    let url = one_shot_server(|stream, head| {
        let _ = stream.write_all(switching_protocols(head).as_bytes());
        // Close 4000 "bye now" (unmasked, from a server).
        let _ = stream.write_all(&[0x88, 0x09, 0x0f, 0xa0, b'b', b'y', b'e', b' ', b'n', b'o', b'w']);
        let mut rest = [0; 64];
        let _ = stream.read(&mut rest); // the echo
    });
    let run = spawn(&["connect", &url]).wait(); // it ends by itself
    assert_eq!(run.code(), 5, "{run:?}");
    assert!(
        run.stderr.contains("4000") && run.stderr.contains("bye now"),
        "{}",
        run.stderr
    );
}

#[test]
fn message_over_max_size_is_reported_not_printed() {
    let server = Serve::start(&[]);
    let line = "x".repeat(100);
    let run = run(
        &["connect", "--max-size", "64", &server.url],
        format!("short\n{line}\n").as_bytes(),
    );
    assert_eq!(run.code(), 5, "{run:?}");
    assert_eq!(run.out(), "short\n", "nothing of the long message is printed");
    assert!(run.stderr.contains("1009"), "{}", run.stderr);
}

#[test]
fn ctrl_c_closes_with_1001_and_exits_0() {
    let server = Serve::start(&[]);
    let mut client = spawn(&["connect", "-v", &server.url]);
    client.write(b"before\n");
    client.wait_for_stdout("before\n"); // connected, Ctrl-C handler in place
    let pid = client.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let run = client.wait();
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "before\n");
    assert!(run.stderr.contains("> close 1001"), "{}", run.stderr);
    assert!(run.stderr.contains("< close 1001"), "{}", run.stderr);
}

#[test]
fn ping_interval_prints_round_trip_times() {
    let server = Serve::start(&[]);
    let client = spawn(&["connect", "--ping-interval", "0.1", &server.url]);
    client.wait_for_stderr_lines("pong: ", 3);
    let run = client.finish();
    assert_eq!(run.code(), 0, "{run:?}");
    let pongs = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("pong: ") && line.ends_with(" ms"))
        .count();
    assert!(pongs >= 3, "{}", run.stderr);
}

#[test]
fn stdout_closed_early_exits_1_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let server = Serve::start(&["--exec", "yes flood"]);
    let mut child = Command::new(common::WSFLOW)
        .args(["connect", &server.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // then closed, as `| head -1` does
    assert_eq!(first, "flood\n");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < common::DEADLINE,
            "still running after stdout closed"
        );
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn proxy_refusal_is_a_connect_failure_naming_the_status() {
    // A proxy that refuses every CONNECT with 407: `--proxy` is used (the request names the
    // target), and the refusal says what happened.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let seen = thread::spawn(move || {
        let (mut tcp, _) = proxy.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        tcp.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let run = run(
        &[
            "connect",
            "--proxy",
            &format!("http://{proxy_addr}"),
            "ws://example.invalid:9/",
        ],
        b"",
    );
    let head = seen.join().unwrap();
    assert!(head.starts_with("CONNECT example.invalid:9 HTTP/1.1\r\n"), "{head}");
    assert_eq!(run.code(), 3, "{run:?}");
    assert!(run.stderr.contains("407"), "{}", run.stderr);
}
