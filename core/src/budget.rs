//! A memory budget shared by many connections: a cap on the bytes all of them together hold
//! in messages that have started to arrive but are not complete.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A server-wide cap on the bytes held in unfinished incoming messages, shared by every
/// connection whose [`Config`](crate::Config) carries a clone of it
/// ([`Config::memory_budget`](crate::Config::memory_budget)).
///
/// Each connection may hold up to the message size limit (64 MiB by default) of a message
/// that has not finished arriving, and a peer decides how long it keeps it there: a few
/// hundred peers that each start a large message and trickle it can exhaust a server whose
/// connections are each within their limits. With a budget, a connection charges it for
/// the bytes of its unfinished message (a partial frame, a reassembled or an inflated
/// message: what arrived, not what a header announced) whenever a read leaves that message
/// unfinished, inflating no further than the budget has room for, and gives the charge back when
/// the message is complete (it is then the application's) or the connection ends or is
/// dropped. A connection whose charge would take the budget past its limit is failed with
/// close code 1013 (Try Again Later) and
/// [`ProtocolError::MemoryBudgetExceeded`](crate::ProtocolError::MemoryBudgetExceeded);
/// the other connections go on. Messages that arrive whole within one read never charge it,
/// so the budget costs nothing on the small-message path.
///
/// What is not counted, because it is bounded per connection already: events waiting to be
/// pulled ([`Config::max_waiting_size`](crate::Config::max_waiting_size)), bytes queued to
/// send (the adapters' high-water mark), and the fixed state of a connection (its deflate
/// windows).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use wsflow::{CloseCode, CloseReason, Config, Connection, Event, MemoryBudget};
///
/// let budget = MemoryBudget::new(1 << 20);
/// let mut config = Config::default();
/// config.memory_budget(Some(budget.clone()));
/// let config = Arc::new(config);
/// let now = Instant::now();
///
/// // A client frame header announcing 768 KiB, and its first 600 KiB (masked with zeros).
/// let mut frame = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0x0C, 0, 0, 0, 0, 0, 0];
/// frame.resize(frame.len() + (600 << 10), 0);
///
/// let mut first = Connection::server(config.clone(), now);
/// first.handle_data(now, &frame);
/// assert!(budget.used() >= 600 << 10);
///
/// // A second connection doing the same would pass the budget: it is failed with 1013.
/// let mut second = Connection::server(config, now);
/// second.handle_data(now, &frame);
/// second.handle_eof(now);
/// let failed = std::iter::from_fn(|| second.poll_event()).any(|event| match event {
///     Event::Closed(closed) => match closed.reason {
///         CloseReason::Failed(error) => error.close_code() == CloseCode::TRY_AGAIN_LATER,
///         _ => false,
///     },
///     _ => false,
/// });
/// assert!(failed);
///
/// // Dropping a connection gives its charge back.
/// drop(first);
/// assert_eq!(budget.used(), 0);
/// ```
#[derive(Clone)]
pub struct MemoryBudget(Arc<Shared>);

struct Shared {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none of them used.
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Shared {
            limit,
            used: AtomicUsize::new(0),
        }))
    }

    /// The limit given to [`MemoryBudget::new`].
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// The bytes charged now, by all connections together.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes` if that keeps the budget within its limit.
    fn try_charge(&self, bytes: usize) -> bool {
        let limit = self.0.limit;
        self.0
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&after| after <= limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .finish()
    }
}

/// Past this many bytes, charges are taken in steps of it, so that a large message growing
/// over many reads touches the shared counter once per step, not once per read.
const CHARGE_STEP: usize = 64 << 10;

/// What one connection has charged to a budget; given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    budget: Option<MemoryBudget>,
    bytes: usize,
}

impl Charge {
    /// Makes the charge cover `held` bytes (it never shrinks here). `Err` carries the
    /// budget's limit when it has no room for them.
    pub(crate) fn cover(&mut self, budget: &MemoryBudget, held: usize) -> Result<(), usize> {
        if held <= self.bytes {
            return Ok(());
        }
        let budget = self.budget.get_or_insert_with(|| budget.clone());
        // Exact below one step, so that many connections each holding a little of a message
        // are charged what they hold; in steps above it (at most one step too much).
        let stepped = if held < CHARGE_STEP {
            held
        } else {
            held.div_ceil(CHARGE_STEP) * CHARGE_STEP
        };
        if budget.try_charge(stepped - self.bytes) {
            self.bytes = stepped;
        } else if budget.try_charge(held - self.bytes) {
            self.bytes = held;
        } else {
            return Err(budget.limit());
        }
        Ok(())
    }

    /// The bytes charged now.
    #[cfg(feature = "deflate")]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives the whole charge back.
    pub(crate) fn release(&mut self) {
        if self.bytes > 0 {
            if let Some(budget) = &self.budget {
                budget.give_back(self.bytes);
            }
            self.bytes = 0;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.release();
    }
}
