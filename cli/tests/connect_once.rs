//! `wsflow connect --once`: send stdin, print the first reply, close with 1000, exit 0.

mod common;

use std::time::{Duration, Instant};

use common::{run, spawn, Serve};

#[test]
fn once_prints_only_the_first_reply() {
    let server = Serve::start(&[]);
    let run = run(&["connect", "--once", "-v", &server.url], b"first\nsecond\nthird\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "first\n");
    assert!(run.stderr.contains("> close 1000"), "{}", run.stderr);
    assert!(run.stderr.contains("< close 1000"), "the server's echo: {}", run.stderr);
}

#[test]
fn once_waits_for_the_reply_after_stdin_ends() {
    // A process that answers after a while: EOF on stdin must not close first.
    let server = Serve::start(&["--exec", "read line; sleep 0.5; echo \"late $line\""]);
    let started = Instant::now();
    let run = run(&["connect", "-1", &server.url], b"reply\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "late reply\n");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn once_without_stdin_prints_the_servers_first_message() {
    let server = Serve::start(&["--exec", "echo welcome; sleep 5"]);
    let mut client = spawn(&["connect", "--once", &server.url]);
    client.stdin.take(); // nothing to send
    let run = client.finish();
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "welcome\n");
}
