//! What the async driver needs from a runtime: its clock, a timer, and a byte stream.
//! The shims implement these (`wsflow-tokio`, `wsflow-smol`); so can anyone who brings
//! another runtime.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

/// A runtime's clock and timer.
///
/// Time comes from the runtime, not from `Instant::now()`, so a runtime with virtual time
/// (tokio's `time::pause`) drives every timeout of the connection.
pub trait Runtime: 'static {
    /// The runtime's timer.
    type Timer: Timer;

    /// The runtime's current time.
    fn now() -> Instant;

    /// A timer that fires at `deadline`.
    fn timer(deadline: Instant) -> Self::Timer;
}

/// A resettable one-shot timer.
pub trait Timer: Unpin + Send {
    /// Makes the timer fire at `deadline` instead.
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed (registering `cx`'s waker until then).
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A byte stream of a runtime, as the driver uses it: the shims wrap the runtime's own
/// `AsyncRead + AsyncWrite` types in a type implementing this.
pub trait AsyncStream: Unpin {
    /// The runtime whose clock and timer drive connections over this stream.
    type Runtime: Runtime;

    /// Reads into `buf`; `Ok(0)` at the end of the stream.
    ///
    /// # Errors
    /// The stream's.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf`.
    ///
    /// # Errors
    /// The stream's.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes from several buffers at once.
    ///
    /// # Errors
    /// The stream's.
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;

    /// Flushes what was written.
    ///
    /// # Errors
    /// The stream's.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Shuts the write side down (TCP FIN; TLS `close_notify` first).
    ///
    /// # Errors
    /// The stream's.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}
