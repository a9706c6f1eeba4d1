//! `wsflow connect` against `wsflow serve` in each mode, with pipes.

mod common;

use common::{run, spawn, Serve};

#[test]
fn echo_returns_every_line_in_order_and_eof_closes_normally() {
    let server = Serve::start(&["--echo"]);
    let input: String = (0..2000).map(|n| format!("line {n}\n")).collect();
    let run = run(&["connect", &server.url], input.as_bytes());
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), input);
    assert_eq!(run.stderr, "", "a normal close in a pipe is quiet");
}

#[test]
fn echo_without_deflate_and_with_crlf_lines() {
    let server = Serve::start(&["--no-deflate"]);
    let run = run(&["connect", "--no-deflate", "-v", &server.url], b"one\r\ntwo\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "one\ntwo\n");
    assert!(run.stderr.contains("extensions: (none)"), "{}", run.stderr);
}

#[test]
fn broadcast_reaches_every_client_and_the_sender() {
    let server = Serve::start(&["--broadcast"]);
    let mut listener = spawn(&["connect", &server.url]);
    // Wait until the listener is in the hub: a message it sends comes back to it.
    listener.write(b"listener here\n");
    listener.wait_for_stdout("listener here\n");
    let sender = run(&["connect", "--once", &server.url], b"to everyone\n");
    assert_eq!(sender.code(), 0, "{sender:?}");
    assert_eq!(sender.out(), "to everyone\n");
    listener.wait_for_stdout("to everyone\n");
    let listener = listener.finish();
    assert_eq!(listener.code(), 0, "{listener:?}");
    assert_eq!(listener.out(), "listener here\nto everyone\n");
}

#[test]
fn exec_pipes_each_connection_through_its_own_process() {
    // Line-buffered: what a process writes after the client closed is lost.
    let server = Serve::start(&["--exec", "while read -r line; do echo \"$line\" | tr a-z A-Z; done"]);
    // stdin stays open while the process answers (EOF would close at once).
    let mut client = spawn(&["connect", &server.url]);
    client.write(b"hello\nworld\n");
    client.wait_for_stdout("HELLO\nWORLD\n");
    let run = client.finish();
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "HELLO\nWORLD\n");
}

#[test]
fn exec_process_ending_its_output_closes_with_1000() {
    let server = Serve::start(&["--exec", "echo greeting; echo $WSFLOW_TARGET"]);
    // stdin stays open: the close comes from the server when the process is done.
    let run = spawn(&["connect", "-v", &format!("{}chat?room=1", server.url)]).wait();
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "greeting\n/chat?room=1\n");
    assert!(run.stderr.contains("< close 1000"), "{}", run.stderr);
}

#[test]
fn binary_mode_streams_stdin_as_one_message_and_prints_it_raw() {
    let server = Serve::start(&[]);
    // 3 MiB that do not compress well: several fragments, more than the high-water mark.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..3 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let run = run(&["connect", "--binary", &server.url], &data);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stdout == data,
        "got {} bytes back, sent {}",
        run.stdout.len(),
        data.len()
    );
}

#[test]
fn binary_messages_are_summarised_without_binary_mode() {
    let server = Serve::start(&[]);
    let run = run(&["connect", "--binary", "--once", &server.url], &[0, 1, 2, 0xff]);
    assert_eq!(run.stdout, [0, 1, 2, 0xff]);
    // Not in binary mode: a line of stdin that is not UTF-8 goes as binary, and the
    // echo is shown as a summary.
    let run = common::run(&["connect", &server.url], b"\xff\xfe\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "<binary 2 bytes> ff fe\n");
}

#[test]
fn broadcast_closes_a_client_that_stops_reading_with_1008_and_the_others_go_on() {
    use wsflow_blocking::{CloseCode, Event, Message};
    let server = Serve::start(&["--broadcast"]);
    let (mut slow, _) = wsflow_blocking::connect(&server.url).unwrap();
    let (mut fast, _) = wsflow_blocking::connect(&server.url).unwrap();
    // Both are in the hub once a line from the second reaches the first.
    fast.send_text("ready").unwrap();
    assert_eq!(fast.recv_message().unwrap(), Some(Message::text("ready")));
    assert_eq!(slow.recv_message().unwrap(), Some(Message::text("ready")));
    // The slow one reads nothing more while 40 MiB go round: more than its 16 MiB budget
    // in the hub, the high-water mark and the socket buffers. The other gets every one.
    let chunk = Message::binary(vec![7u8; 1 << 20]);
    for _ in 0..40 {
        fast.send(chunk.clone()).unwrap();
        assert_eq!(fast.recv_message().unwrap().as_ref(), Some(&chunk));
    }
    // What the slow one was sent before the hub gave up on it, then the close (a read that
    // waits 10 s fails the test).
    slow.get_ref()
        .tcp()
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut received = 0;
    let closed = loop {
        match slow.recv().unwrap() {
            Some(Event::Message(message)) => {
                assert_eq!(message, chunk);
                received += 1;
            }
            Some(Event::Closed(closed)) => break closed,
            Some(_) => {}
            None => panic!("no Closed"),
        }
    };
    assert_eq!(
        closed.code(),
        CloseCode::POLICY_VIOLATION,
        "{closed:?} after {received} MiB"
    );
    assert!(received < 40, "the slow client got everything: {received} MiB");
}
