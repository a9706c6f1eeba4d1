//! A real `redis-server` (Debian's) on a loopback port, for the tests that need one; killed
//! when dropped. Without the binary the test is skipped with a message, except under CI
//! (`CI` set), where it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    /// Starts one on `port`; `None` (skip) when it is not installed, outside CI.
    pub fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: redis-server not found ({error}); run tests/services/setup.sh");
                return None;
            }
            Err(error) => panic!("redis-server: {error} (under CI it must be installed)"),
        };
        let server = Self {
            child: Some(child),
            port,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {port}");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl RedisServer {
    /// No server (what a stopped one is replaced with).
    pub fn none() -> Self {
        Self { child: None, port: 0 }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
