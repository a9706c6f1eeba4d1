//! A custom event loop for real: the core crate alone (no adapter, no async runtime)
//! serving many WebSocket connections from one thread, with a readiness poller (the
//! `mio` crate: epoll, kqueue, IOCP, ...) and non-blocking sockets.
//!
//! ```text
//! cargo run --release -p wsflow --example event-loop -- [ADDR]
//!     an echo server (default 127.0.0.1:9002): every text and binary message back as one
//!     message, permessage-deflate accepted when offered, subprotocol "chat" or
//!     "superchat" when offered; a text message `stop-listening` closes the listening
//!     socket, and the process exits once the open connections are done
//! cargo run --release -p wsflow --example event-loop -- client [URL]
//!     checks against an echo server (default ws://127.0.0.1:9002/): messages of many
//!     sizes, a fragmented one, a ping, the closing handshake; `N passed, M failed`
//! cargo run --release -p wsflow --example event-loop -- autobahn-client [BASE_URL] [AGENT]
//!     the Autobahn|Testsuite client (default ws://127.0.0.1:9001 wsflow-event-loop)
//! ```
//!
//! The parts:
//! - `link.rs`: one socket and the core's state machine for it (`ServerHandshake` or
//!   `ClientHandshake`, then `Connection`). On each wake-up: the timer if due
//!   (`handle_timeout`), read and feed (`handle_data`, `handle_eof`), pull events
//!   (`poll_event`; the application answers them), pull bytes (`poll_transmit`) into an
//!   unsent queue, write what the socket takes (until `WouldBlock`), keep the rest. It reads
//!   unless the core has events waiting or the outgoing bytes passed a high-water mark (no
//!   unbounded buffering). The socket is registered once for both directions and the
//!   poller is edge triggered, so the link remembers a readable socket it did not read dry
//!   and reports whether it must be woken again without waiting (`has_pending_input`); and
//!   when to be woken regardless (`poll_timeout`).
//! - `server.rs`: the loop: the poller, the listener, the links by key, their deadlines in
//!   a sorted set, the links with input left for the next turn; a link is dropped (its
//!   socket deregistered from the poller and closed) once `Event::Closed` was pulled and
//!   everything was written, or the core's last deadline passed.
//! - `client.rs`: the clients, with the same links, one connection at a time.

mod client;
mod link;
mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let result = match args.first().map(String::as_str) {
        Some("client") => client::check(&arg(1, "ws://127.0.0.1:9002/")),
        Some("autobahn-client") => {
            client::autobahn(&arg(1, "ws://127.0.0.1:9001"), &arg(2, "wsflow-event-loop")).map(|()| true)
        }
        Some("-h" | "--help") => {
            println!("usage: event-loop [ADDR] | client [URL] | autobahn-client [BASE_URL] [AGENT]");
            Ok(true)
        }
        _ => server::serve(&arg(0, "127.0.0.1:9002")).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("event-loop: {error}");
            ExitCode::FAILURE
        }
    }
}
