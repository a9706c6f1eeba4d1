//! `ClientHandshake` fed an arbitrary response in arbitrary chunks, then EOF: exactly one
//! outcome, a shutdown unless accepted, rejection bodies within the limit, and a working
//! connection after a 101.
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsflow::{ClientEvent, ClientHandshake, Event, Role};
use wsflow_fuzz::{
    check_events, chunks, client_request, decode_output, deflate_config, handshake_config, pump, Wire, ENTROPY,
    MAX_HANDSHAKE_INPUT, SUBPROTOCOL,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Selects `max_handshake_size`.
    limit: u8,
    /// Whether the client offers permessage-deflate.
    offer_deflate: bool,
    /// The client's permessage-deflate settings (see `deflate_config`).
    deflate: u8,
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    if input.data.len() > MAX_HANDSHAKE_INPUT {
        return;
    }
    let now = Instant::now();
    let mut config = handshake_config(input.limit);
    config.deflate(input.offer_deflate.then(|| deflate_config(input.deflate)));
    let config = Arc::new(config);
    let max = config.get_max_handshake_size();
    let mut handshake = ClientHandshake::new(&client_request(), config, now, ENTROPY).expect("a valid request");
    let mut request = Wire::default();
    request.drain(|| handshake.poll_transmit());
    assert!(request.bytes.starts_with(b"GET /chat HTTP/1.1\r\n") && request.bytes.ends_with(b"\r\n\r\n"));
    assert!(!request.shutdown);

    let mut wire = Wire::default();
    let mut events = Vec::new();
    for chunk in chunks(input.data, &input.sizes) {
        handshake.handle_data(now, chunk);
        wire.drain(|| handshake.poll_transmit());
        events.extend(std::iter::from_fn(|| handshake.poll_event()));
    }
    handshake.handle_eof(now);
    wire.drain(|| handshake.poll_transmit());
    events.extend(std::iter::from_fn(|| handshake.poll_event()));

    assert!(wire.bytes.is_empty(), "the client wrote more than its request");
    let [outcome] = &events[..] else {
        panic!("not exactly one outcome: {events:?}")
    };
    match outcome {
        ClientEvent::Accepted(response) => {
            assert_eq!(response.status(), 101);
            assert!(matches!(response.subprotocol(), None | Some(SUBPROTOCOL)));
            assert!(!wire.shutdown, "shut down after a 101");
            // The frames that followed the 101 were fed to the connection; end it.
            let mut connection = handshake.into_connection(now).expect("a connection after a 101");
            // Compressed exactly when the server agreed to our offer.
            let extension = response.headers().list("sec-websocket-extensions").next().is_some();
            assert_eq!(connection.is_compressed(), extension);
            assert!(
                !extension || input.offer_deflate,
                "accepted an extension that was not offered"
            );
            connection.handle_eof(now);
            let (mut output, mut events) = (Wire::default(), Vec::new());
            pump(&mut connection, &mut output, &mut events);
            check_events(&events, connection.config().get_max_message_size());
            assert!(matches!(events.last(), Some(Event::Closed(_))));
            decode_output(&output.bytes, Role::Client);
        }
        ClientEvent::Rejected(response) => {
            assert_ne!(response.status(), 101);
            assert!(
                response.body().len() <= max,
                "a body of {} > {max} bytes",
                response.body().len()
            );
            let announced = response.headers().get("content-length");
            if let Some(length) = announced.and_then(|length| length.trim().parse::<usize>().ok()) {
                assert!(response.body().len() <= length, "a body longer than announced");
            }
            assert!(wire.shutdown, "no shutdown after a rejection");
        }
        ClientEvent::Failed(_) => assert!(wire.shutdown, "no shutdown after a failure"),
    }
});
