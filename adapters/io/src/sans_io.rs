//! [`SansIo`]: the I/O-facing surface of the core's three state machines.

use std::time::Instant;

use wsflow::{ClientHandshake, Connection, ProxyHandshake, ServerHandshake, Transmit};

/// The I/O-facing surface shared by [`Connection`], [`ServerHandshake`],
/// [`ClientHandshake`] and [`ProxyHandshake`], so that one drive loop serves any of them: feed reads, write
/// transmits, arm a timer.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use wsflow::{Config, Connection};
/// use wsflow_io::SansIo;
///
/// fn deadline(machine: &impl SansIo) -> Option<Instant> {
///     machine.poll_timeout()
/// }
/// let server = Connection::server(Arc::new(Config::default()), Instant::now());
/// assert_eq!(deadline(&server), None); // no keepalive configured
/// ```
pub trait SansIo {
    /// Feeds bytes read from the transport.
    fn handle_data(&mut self, now: Instant, data: &[u8]);
    /// Reports that the peer closed the transport.
    fn handle_eof(&mut self, now: Instant);
    /// Reports that the deadline from [`poll_timeout`](Self::poll_timeout) has come.
    fn handle_timeout(&mut self, now: Instant);
    /// The next bytes to write.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When to call [`handle_timeout`](Self::handle_timeout).
    fn poll_timeout(&self) -> Option<Instant>;
}

macro_rules! impl_sans_io {
    ($($ty:ty),*) => {$(
        impl SansIo for $ty {
            fn handle_data(&mut self, now: Instant, data: &[u8]) {
                <$ty>::handle_data(self, now, data)
            }
            fn handle_eof(&mut self, now: Instant) {
                <$ty>::handle_eof(self, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                <$ty>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
        }
    )*};
}

impl_sans_io!(Connection, ServerHandshake, ClientHandshake, ProxyHandshake);
