//! A server- or client-role `Connection` with small limits fed arbitrary bytes in arbitrary
//! chunks, then (optionally) every timer, then EOF; compared with the same bytes fed whole.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsflow::frame::OpCode;
use wsflow::{Connection, Event, Role, State};
use wsflow_fuzz::{
    check_events, chunks, connect, decode_output, deflate_config, pump, reassembled, small_config, Wire, WireFrame,
    ENTROPY,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Bit 0: client role (else server); bit 1: streaming; bit 2: no automatic pongs;
    /// bit 3: the timers fire before the EOF; bit 4: permessage-deflate negotiated.
    flags: u8,
    /// The client's and the server's permessage-deflate settings (see `deflate_config`).
    deflate: [u8; 2],
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

impl Input<'_> {
    fn role(&self) -> Role {
        if self.flags & 1 != 0 {
            Role::Client
        } else {
            Role::Server
        }
    }

    fn streaming(&self) -> bool {
        self.flags & 2 != 0
    }
}

/// What a connection did with one feeding of the input.
struct Run {
    events: Vec<Event>,
    wire: Wire,
}

impl Run {
    /// Collects what `connection` wrote and reported; returns the new events.
    fn drain(&mut self, connection: &mut Connection) -> &[Event] {
        let known = self.events.len();
        pump(connection, &mut self.wire, &mut self.events);
        &self.events[known..]
    }
}

fn run<'a>(input: &Input<'_>, now: Instant, pieces: impl Iterator<Item = &'a [u8]>) -> Run {
    let config = |deflate: u8| {
        let mut config = small_config(input.streaming(), input.flags & 4 == 0);
        config
            .ping_interval(Some(Duration::from_secs(1)))
            .deflate(Some(deflate_config(deflate)));
        config
    };
    let (client_config, server_config) = (config(input.deflate[0]), config(input.deflate[1]));
    let max_message_size = client_config.get_max_message_size();
    let mut connection = match (input.flags & 16 != 0, input.role()) {
        (true, role) => {
            // Through the real handshakes, so that both ends agree on the parameters.
            let (client, server) = connect(client_config, server_config, now);
            assert!(client.is_compressed());
            if role == Role::Client {
                client
            } else {
                server
            }
        }
        (false, Role::Client) => Connection::client(Arc::new(client_config), now, ENTROPY),
        (false, Role::Server) => Connection::server(Arc::new(server_config), now),
    };
    let mut run = Run {
        events: Vec::new(),
        wire: Wire::default(),
    };
    // Inflating aside, streaming holds no more than a read: a part is never larger.
    let bounded_parts = !connection.is_compressed();
    for piece in pieces {
        connection.handle_data(now, piece);
        for event in run.drain(&mut connection) {
            if let Event::Fragment { data, .. } = event {
                assert!(
                    !bounded_parts || data.len() <= piece.len(),
                    "a part of {} bytes from a {}-byte read",
                    data.len(),
                    piece.len()
                );
            }
        }
    }
    let later = now + Duration::from_secs(3600);
    if input.flags & 8 != 0 {
        connection.handle_timeout(later);
        run.drain(&mut connection);
    }
    connection.handle_eof(later);
    run.drain(&mut connection);
    check_events(&run.events, max_message_size);
    assert!(
        matches!(run.events.last(), Some(Event::Closed(_))),
        "no Closed after EOF"
    );
    assert_eq!(connection.state(), State::Closed);
    // The end rule: a linger deadline while the last bytes may be written, then none.
    if let Some(linger) = connection.poll_timeout() {
        assert!(
            linger > later - Duration::from_secs(3600),
            "the linger starts at the end"
        );
        connection.handle_timeout(linger);
    }
    assert_eq!(connection.poll_timeout(), None);
    assert!(connection.poll_transmit().is_none(), "nothing is left after the linger");
    run
}

/// Pongs apart: a burst of pings read at once may be answered with fewer pongs (only the
/// latest must be), and a client draws masks in write order, so compare frames unmasked.
fn split_pongs(frames: Vec<WireFrame>) -> (Vec<WireFrame>, Vec<WireFrame>) {
    frames.into_iter().partition(|frame| frame.opcode == OpCode::Pong)
}

fn is_subsequence(short: &[WireFrame], long: &[WireFrame]) -> bool {
    let mut long = long.iter();
    short.iter().all(|frame| long.any(|other| other == frame))
}

fuzz_target!(|input: Input<'_>| {
    let now = Instant::now();
    let chunked = run(&input, now, chunks(input.data, &input.sizes));
    let whole = run(&input, now, std::iter::once(input.data));
    if input.streaming() {
        assert_eq!(reassembled(&chunked.events), reassembled(&whole.events));
    } else {
        assert_eq!(chunked.events, whole.events);
    }
    assert_eq!(chunked.wire.shutdown, whole.wire.shutdown);
    let (chunked_pongs, chunked_frames) = split_pongs(decode_output(&chunked.wire.bytes, input.role()));
    let (whole_pongs, whole_frames) = split_pongs(decode_output(&whole.wire.bytes, input.role()));
    assert_eq!(chunked_frames, whole_frames);
    assert!(
        is_subsequence(&whole_pongs, &chunked_pongs),
        "{whole_pongs:?} vs {chunked_pongs:?}"
    );
});
