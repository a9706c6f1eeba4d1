//! Our clients (every adapter) against real peers nobody here wrote: Python `websockets` and
//! Node `ws` echo servers (tests/peers/py_server.py, node_server.js).
//!
//! The peers are installed by `tests/peers/setup.sh`, so these tests are `#[ignore]`d in a
//! plain `cargo test`; `tests/peers/interop.sh` runs them with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{blocking_client, smol_run, tokio_run};

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// A peer echo server on a free loopback port, killed on drop.
struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    /// Starts the peer on port 0 and reads the port it got from its first line
    /// (`... listening on ws://127.0.0.1:PORT`): tests run in parallel, and a port picked
    /// here and released could be taken by another test's peer before this one binds it.
    fn start(kind: &str) -> Peer {
        let dir = peers_dir();
        let mut command = match kind {
            "python" => {
                let mut command = Command::new(dir.join(".venv/bin/python"));
                command.arg(dir.join("py_server.py"));
                command
            }
            _ => {
                let mut command = Command::new("node");
                command.arg(dir.join("node_server.js"));
                command
            }
        };
        let mut child = command
            .arg("0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the {kind} peer (run tests/peers/setup.sh): {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = sender.send(first);
            lines.for_each(drop); // keep draining so the peer never blocks on stdout
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("the {kind} peer did not say where it listens"));
        let port: u16 = line
            .rsplit(':')
            .next()
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from the {kind} peer: {line:?}"));
        Peer {
            child,
            url: format!("ws://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

macro_rules! interop_tests {
    ($($test:ident: $peer:literal, $run:expr;)*) => {$(
        #[test]
        #[ignore = "needs the peers of tests/peers/setup.sh; run by tests/peers/interop.sh"]
        fn $test() {
            let peer = Peer::start($peer);
            let run: fn(&str) = $run;
            run(&peer.url);
        }
    )*};
}

interop_tests! {
    blocking_client_against_python_websockets: "python", blocking_client::run;
    blocking_client_against_node_ws: "node", blocking_client::run;
    tokio_client_against_python_websockets: "python", tokio_run;
    tokio_client_against_node_ws: "node", tokio_run;
    smol_client_against_python_websockets: "python", smol_run;
    smol_client_against_node_ws: "node", smol_run;
}
