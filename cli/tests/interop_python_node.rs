//! `wsflow connect` against servers nobody here wrote: Python `websockets` and Node `ws`
//! (tests/peers/py_server.py and node_server.js: echo, subprotocols chat/superchat,
//! `close:CODE:REASON` closes, permessage-deflate on).
//!
//! Ignored by plain `cargo test`: the peers must be installed first. `cli/tests/interop.sh`
//! installs them (tests/peers/setup.sh) and runs these with `--ignored`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::run;

/// A peer server process, killed when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers")
}

/// Starts `program script 0` and reads the `... listening on ws://..` line it prints.
fn start(program: &Path, script: &str) -> Peer {
    let mut child = Command::new(program)
        .arg(peers_dir().join(script))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("{} (run tests/peers/setup.sh): {error}", program.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    Peer { child, url }
}

fn python() -> Peer {
    start(&peers_dir().join(".venv/bin/python"), "py_server.py")
}

fn node() -> Peer {
    start(Path::new("node"), "node_server.js")
}

fn echo_lines_in_order(peer: &Peer) {
    // stdin stays open until the echoes are in: websockets answers our close at once,
    // dropping what it had not echoed yet (EOF closes right away).
    let input: String = (0..500).map(|n| format!("line {n} ünïcødé\n")).collect();
    let mut client = common::spawn(&["connect", &peer.url]);
    client.write(input.as_bytes());
    client.wait_for_stdout("line 499 ");
    let run = client.finish();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let (got, sent) = (run.out().lines().count(), input.lines().count());
    assert!(run.out() == input, "{got} of {sent} lines back, or out of order");
}

fn once_with_subprotocol_and_deflate(peer: &Peer) {
    let run = run(&["connect", "-1", "-v", "--subprotocol", "chat", &peer.url], b"hi\n");
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(run.out(), "hi\n");
    assert!(run.stderr.contains("subprotocol: chat"), "{}", run.stderr);
    assert!(run.stderr.contains("extensions: permessage-deflate"), "{}", run.stderr);
}

fn binary_round_trip(peer: &Peer) {
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    // --once: the reply is waited for (EOF alone closes at once, and these servers answer
    // a close without echoing what they had not sent yet).
    let run = run(&["connect", "--binary", "--once", &peer.url], &data);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == data, "got {} bytes back", run.stdout.len());
}

fn close_code_from_the_peer(peer: &Peer) {
    let mut client = common::spawn(&["connect", &peer.url]);
    client.write(b"close:4000:bye now\n");
    let run = client.wait();
    assert_eq!(run.code(), 5, "{run:?}");
    assert!(
        run.stderr.contains("4000") && run.stderr.contains("bye now"),
        "{}",
        run.stderr
    );
    let mut client = common::spawn(&["connect", &peer.url]);
    client.write(b"close:1000:done\n");
    let run = client.wait();
    assert_eq!(run.code(), 0, "{run:?}");
}

#[test]
#[ignore = "needs tests/peers/setup.sh; run by cli/tests/interop.sh"]
fn python_websockets_server() {
    let peer = python();
    echo_lines_in_order(&peer);
    once_with_subprotocol_and_deflate(&peer);
    binary_round_trip(&peer);
    close_code_from_the_peer(&peer);
}

#[test]
#[ignore = "needs tests/peers/setup.sh; run by cli/tests/interop.sh"]
fn node_ws_server() {
    let peer = node();
    echo_lines_in_order(&peer);
    once_with_subprotocol_and_deflate(&peer);
    binary_round_trip(&peer);
    close_code_from_the_peer(&peer);
}
