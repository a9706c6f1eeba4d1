//! Running the built `wsflow` binary the way a person does: with pipes, a deadline, and
//! a `wsflow serve` (or a hand-written peer) to talk to.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test.
pub const WSFLOW: &str = env!("CARGO_BIN_EXE_wsflow");
/// The longest any one run may take before the test fails (no test hangs forever).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A `wsflow serve` process on a free port, killed when dropped.
pub struct Serve {
    child: Child,
    /// `ws://127.0.0.1:PORT/` (or `wss://`).
    pub url: String,
}

impl Serve {
    /// Starts `wsflow serve 127.0.0.1:0 ARGS..` and reads the URL it prints.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(WSFLOW)
            .arg("serve")
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("wsflow serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("wsflow serve prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished run gave.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// The exit code (a signal fails the test).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A running `wsflow` with its stdin open, stdout and stderr collected as they come.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Collects everything `pipe` gives into `into`.
fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0; 64 << 10];
        while let Ok(read @ 1..) = pipe.read(&mut buf) {
            into.lock().unwrap().extend_from_slice(&buf[..read]);
        }
    })
}

/// Starts `wsflow ARGS..` with piped stdin, stdout and stderr.
pub fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(WSFLOW)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsflow starts");
    let (stdout, stderr) = (Arc::default(), Arc::default());
    let readers = vec![
        collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
        collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
    ];
    Running {
        stdin: child.stdin.take(),
        child,
        stdout,
        stderr,
        readers,
    }
}

impl Running {
    /// Writes to its stdin.
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("writing to wsflow's stdin");
        stdin.flush().unwrap();
    }

    /// Waits until stdout holds `text` (within [`DEADLINE`], else fails).
    pub fn wait_for_stdout(&self, text: &str) {
        self.wait_for(&self.stdout, |seen| seen.contains(text), text);
    }

    /// Waits until `count` lines of stderr start with `prefix` (within [`DEADLINE`]).
    pub fn wait_for_stderr_lines(&self, prefix: &str, count: usize) {
        let enough = |seen: &str| seen.lines().filter(|line| line.starts_with(prefix)).count() >= count;
        self.wait_for(&self.stderr, enough, prefix);
    }

    fn wait_for(&self, stream: &Mutex<Vec<u8>>, done: impl Fn(&str) -> bool, what: &str) {
        let started = Instant::now();
        while !done(&String::from_utf8_lossy(&stream.lock().unwrap())) {
            assert!(
                started.elapsed() < DEADLINE,
                "never saw {what:?}; stdout {:?}, stderr {:?}",
                String::from_utf8_lossy(&self.stdout.lock().unwrap()),
                String::from_utf8_lossy(&self.stderr.lock().unwrap())
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes stdin and waits for the exit (within [`DEADLINE`], else kills it and fails).
    pub fn finish(mut self) -> Run {
        drop(self.stdin.take());
        self.wait()
    }

    /// Waits for the exit with stdin still open (within [`DEADLINE`]).
    pub fn wait(mut self) -> Run {
        let _stdin = self.stdin.take();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
                panic!("wsflow did not exit within {DEADLINE:?}; stderr: {stderr}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers {
            reader.join().unwrap();
        }
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        Run { status, stdout, stderr }
    }
}

/// Runs `wsflow ARGS..` with `input` on stdin (then EOF) to its end.
pub fn run(args: &[&str], input: &[u8]) -> Run {
    let mut running = spawn(args);
    let mut stdin = running.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: a large input must not wait on our reading of stdout.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let run = running.finish();
    writer.join().unwrap();
    run
}

/// A TCP server that answers one connection with `respond(request head)`, on a free port.
/// Returns its `ws://` URL.
pub fn one_shot_server(respond: impl FnOnce(&mut std::net::TcpStream, &str) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        respond(&mut stream, &String::from_utf8_lossy(&head));
    });
    format!("ws://127.0.0.1:{port}/")
}

/// The 101 answer to a client's upgrade request `head` (no extensions, no subprotocol).
pub fn switching_protocols(head: &str) -> String {
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        wsflow_blocking::wsflow::accept_key(key.as_bytes())
    )
}
