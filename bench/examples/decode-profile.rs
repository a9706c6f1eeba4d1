//! Decodes masked client frames through `Connection::handle_data` + `poll_event`, for
//! counting instructions per frame under callgrind (stable on a loaded machine, unlike time):
//!
//! ```sh
//! CARGO_TARGET_DIR=target cargo build --release --manifest-path bench/Cargo.toml --example decode-profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/decode-profile 16
//! callgrind_annotate /tmp/cg.out | head -30
//! ```
//!
//! Argument: the payload size (default 16). It decodes 100 rounds of the codec benchmark's
//! frames (4,096 frames, or about 1 MiB of them for big sizes), in 64 KiB reads as the
//! benchmark does, and prints the frame count to divide the total by.

use std::sync::Arc;
use std::time::Instant;

use wsflow::{Config, Connection, Event};
use wsflow_bench::{frame_count, masked_frames};

const ROUNDS: usize = 100;

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .map_or(16, |arg| arg.parse().expect("a payload size"));
    let (wire, count) = (masked_frames(size), frame_count(size));
    let now = Instant::now();
    let mut server = Connection::server(Arc::new(Config::default()), now);
    let mut received = 0;
    for _ in 0..ROUNDS {
        for read in wire.chunks(64 << 10) {
            server.handle_data(now, read);
            while let Some(event) = server.poll_event() {
                if let Event::Message(message) = event {
                    received += message.len();
                }
            }
        }
    }
    assert_eq!(received, ROUNDS * count * size);
    println!("{} frames of {size} B", ROUNDS * count);
}
