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

#[test]
fn verbose_logs_every_frame_with_fin_rsv1_and_length() {
    let server = Serve::start(&[]);
    let line = "a line long enough to be compressed, compressed, compressed".repeat(4);
    let run = run(
        &["connect", "--once", "-v", &server.url],
        format!("{line}\n").as_bytes(),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    // The line goes out compressed (RSV1) and comes back compressed; the closes are frames too.
    let frames: Vec<&str> = run.stderr.lines().filter(|line| line.contains(" frame ")).collect();
    let sent_text = frames
        .iter()
        .find(|line| line.contains("> frame Text fin=1 rsv1=1 len="));
    let got_text = frames
        .iter()
        .find(|line| line.contains("< frame Text fin=1 rsv1=1 len="));
    assert!(sent_text.is_some() && got_text.is_some(), "{}", run.stderr);
    assert!(
        frames
            .iter()
            .any(|line| line.contains("> frame Close fin=1 rsv1=0 len=2")),
        "{}",
        run.stderr
    );
    assert!(
        frames
            .iter()
            .any(|line| line.contains("< frame Close fin=1 rsv1=0 len=2")),
        "{}",
        run.stderr
    );
}
