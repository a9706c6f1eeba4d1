//! The events waiting to be pulled.
//!
//! Small whole messages are the common case of a busy connection (chat lines, game state,
//! JSON ticks), so they get a cheap path: their payloads are copied and unmasked into a
//! shared block, and each waits in the queue as a few numbers until it is pulled, when it
//! becomes a slice of its block. A block holds the small messages of what is left of a read,
//! up to [`BLOCK_SIZE`] bytes: one allocation for many messages (and no more room than a
//! short read needs), and no `Bytes` is built for a message before the application asks.
//! Blocks are released as soon as no queued message refers to them, so an idle connection
//! holds none; a message kept for long pins at most its block, and a block sealed mostly
//! empty (a read of a few small messages and a big one) is shrunk to what it holds.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::Event;
use crate::frame::extend_unmasked;
use crate::message::{Message, MessageKind};

/// Messages up to this size that arrive whole go into shared blocks.
pub(crate) const SMALL_MESSAGE_MAX: usize = 1024;
/// The size of a block of small message payloads.
const BLOCK_SIZE: usize = 16 << 10;

/// A text payload that is not UTF-8.
#[derive(Debug)]
pub(crate) struct InvalidUtf8;

/// The events of a connection, in order.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    /// The first event, when it was queued with the queue empty: a message alone in its
    /// read (a chat line, a request awaiting its answer, a big message), a control frame.
    /// It takes no room in `entries`, whose storage is freed whenever the queue empties,
    /// so a connection that gets one event at a time allocates nothing to queue it.
    head: Option<Event>,
    /// The events after `head`.
    entries: VecDeque<Entry>,
    /// Whether the last entry is a run of small messages that goes on with the next one.
    run_open: bool,
    /// The queued small messages, in order: each one's kind and where it ends in its block
    /// (it starts where the one before it in the block ended).
    small: VecDeque<Small>,
    /// Sealed blocks that no queued message has been pulled from yet, oldest first.
    sealed: VecDeque<Bytes>,
    /// The block the last small message was pulled from, and where that message ended.
    reading: Bytes,
    read_end: usize,
    /// The block being filled; it is sealed when full or when its first message is pulled.
    filling: Vec<u8>,
    /// The payload bytes of the message and fragment events queued with [`push`](Self::push)
    /// (small messages in blocks are not counted: they are never more than the read that
    /// brought them). What inflation or reassembly made waits here: the connection stops
    /// taking input while it is over [`Config::max_waiting_size`](crate::Config::max_waiting_size).
    data_bytes: usize,
}

#[derive(Debug)]
enum Entry {
    Event(Event),
    /// A run of small messages: the next ones in `small`, up to the one marked [`ENDS_RUN`]
    /// or the last. (A run costs one entry, so a read of many small messages queues four
    /// bytes per message.)
    SmallRun,
}

/// A queued small message (four bytes).
#[derive(Clone, Copy, Debug)]
struct Small {
    /// Where the payload ends in its block.
    end: u16,
    kind: MessageKind,
    /// [`OPENS_BLOCK`] and [`ENDS_RUN`].
    flags: u8,
}

/// The first message of its block (it starts at 0, in the next block).
const OPENS_BLOCK: u8 = 1;
/// The last message of its run (an event was queued after it).
const ENDS_RUN: u8 = 2;

impl EventQueue {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none() && self.entries.is_empty()
    }

    /// Whether the next event is a message or a fragment (answered without building it).
    #[inline]
    pub(crate) fn next_is_data(&self) -> bool {
        match self.front_event() {
            Some(event) => matches!(event, Event::Message(_) | Event::Fragment { .. }),
            None => matches!(self.entries.front(), Some(Entry::SmallRun)),
        }
    }

    /// The next event, unless it is a small message (or there is none).
    #[inline]
    fn front_event(&self) -> Option<&Event> {
        self.head.as_ref().or(match self.entries.front() {
            Some(Entry::Event(event)) => Some(event),
            _ => None,
        })
    }

    /// See [`EventQueue::data_bytes`](#structfield.data_bytes).
    #[inline]
    pub(crate) fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    pub(crate) fn push(&mut self, event: Event) {
        self.data_bytes += data_len(&event);
        if std::mem::take(&mut self.run_open) {
            if let Some(last) = self.small.back_mut() {
                last.flags |= ENDS_RUN;
            }
        }
        if self.is_empty() {
            self.head = Some(event);
        } else {
            self.entries.push_back(Entry::Event(event));
        }
    }

    /// Queues a whole message of at most [`SMALL_MESSAGE_MAX`] bytes, given as they arrived
    /// (masked with `mask`, if set). Text is validated here, so that a bad message fails
    /// the connection before the frames that follow it are read. `read_left`: the bytes
    /// of the read from `wire` on, which bound the room the messages of this read need.
    #[inline(always)]
    pub(crate) fn push_small(
        &mut self,
        kind: MessageKind,
        wire: &[u8],
        mask: Option<[u8; 4]>,
        read_left: usize,
    ) -> Result<(), InvalidUtf8> {
        debug_assert!(wire.len() <= SMALL_MESSAGE_MAX);
        if wire.is_empty() || (read_left == wire.len() && self.is_empty()) {
            return self.push_lone(kind, wire, mask);
        }
        if self.filling.capacity() - self.filling.len() < wire.len() {
            self.start_block(wire.len(), read_left);
        }
        let start = self.filling.len();
        extend_unmasked(&mut self.filling, wire, mask, 0);
        if kind == MessageKind::Text && !is_utf8_small(&self.filling[start..]) {
            self.filling.truncate(start);
            return Err(InvalidUtf8);
        }
        // Offsets within a block fit in 16 bits (BLOCK_SIZE <= 65,536).
        self.small.push_back(Small {
            end: self.filling.len() as u16,
            kind,
            flags: if start == 0 { OPENS_BLOCK } else { 0 },
        });
        if !self.run_open {
            self.entries.push_back(Entry::SmallRun);
            self.run_open = true;
        }
        Ok(())
    }

    /// Queues a message that is alone in the queue and the last of its read (a chat line, a
    /// request that waits for its answer), or empty: a buffer of its own costs less than a
    /// block and its records.
    fn push_lone(&mut self, kind: MessageKind, wire: &[u8], mask: Option<[u8; 4]>) -> Result<(), InvalidUtf8> {
        let mut payload = Vec::with_capacity(wire.len());
        extend_unmasked(&mut payload, wire, mask, 0);
        let message = Message::from_payload(kind, Bytes::from(payload)).map_err(|_| InvalidUtf8)?;
        self.push(Event::Message(message));
        Ok(())
    }

    /// Pulls the next event.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        if let Some(message) = self.pop_small() {
            return Some(Event::Message(message));
        }
        let event = match self.head.take() {
            Some(event) => event,
            None => match self.entries.pop_front()? {
                Entry::Event(event) => event,
                Entry::SmallRun => unreachable!("pop_small takes small messages"),
            },
        };
        self.data_bytes -= data_len(&event);
        if self.entries.is_empty() {
            self.release();
        }
        Some(event)
    }

    /// Pulls the next event if it is a whole message.
    #[inline(always)]
    pub(crate) fn pop_message(&mut self) -> Option<Message> {
        if let Some(message) = self.pop_small() {
            return Some(message);
        }
        if !matches!(self.front_event(), Some(Event::Message(_))) {
            return None;
        }
        match self.pop()? {
            Event::Message(message) => Some(message),
            _ => unreachable!("the front event is a message"),
        }
    }

    /// Pulls the next event if it is a small message: the hot path of a busy connection,
    /// inlined so that the message is built where the caller wants it (returned through
    /// a function, it cost a copy that stalled on store forwarding).
    #[inline(always)]
    pub(crate) fn pop_small(&mut self) -> Option<Message> {
        let message = self.take_small()?;
        if self.entries.is_empty() {
            self.release();
        }
        Some(message)
    }

    /// Frees everything: an idle connection holds no queue and no block. Called each time
    /// the queue empties, mostly with nothing to free (one event at a time: the head).
    #[inline(always)]
    fn release(&mut self) {
        let holds_storage = self.entries.capacity() != 0
            || self.small.capacity() != 0
            || self.sealed.capacity() != 0
            || self.filling.capacity() != 0
            || !self.reading.is_empty();
        if holds_storage {
            self.free_storage();
        }
    }

    #[cold]
    fn free_storage(&mut self) {
        debug_assert!(self.head.is_none(), "released with an event in the head");
        *self = Self::default();
    }

    /// Takes the next small message, if it is next: a slice of its block.
    #[inline(always)]
    fn take_small(&mut self) -> Option<Message> {
        let (None, Some(Entry::SmallRun)) = (&self.head, self.entries.front()) else {
            return None;
        };
        let small = self.small.pop_front().expect("a run holds at least one small message");
        if small.flags & ENDS_RUN != 0 || self.small.is_empty() {
            self.entries.pop_front();
            // The last run is the open one, if any.
            self.run_open &= !self.small.is_empty();
        }
        if small.flags & OPENS_BLOCK != 0 {
            self.open_next_block();
        }
        let end = usize::from(small.end);
        let start = std::mem::replace(&mut self.read_end, end);
        let payload = self.reading.slice(start..end);
        Some(Message::from_payload(small.kind, payload).expect("small text is validated when queued"))
    }

    /// Moves on to the next block, sealing it first if it is the one being filled.
    #[cold]
    fn open_next_block(&mut self) {
        if self.sealed.is_empty() {
            self.seal();
        }
        self.reading = self.sealed.pop_front().unwrap_or_default();
        self.read_end = 0;
    }

    /// Seals the block being filled and starts one for the messages of what is left of
    /// this read (`read_left` bytes, of which the next message takes `len`): a block's
    /// worth at most, so a read of a few messages takes no more than it needs.
    #[cold]
    fn start_block(&mut self, len: usize, read_left: usize) {
        self.seal();
        self.filling.reserve_exact(read_left.clamp(len, BLOCK_SIZE));
        if self.small.capacity() == 0 {
            // Room for a typical read's records at once (they are four bytes each).
            self.small.reserve((read_left / 8).clamp(4, 256));
        }
    }

    /// Moves the block being filled, if any, to the sealed ones. A block sealed mostly
    /// empty (a read of a few small messages and a big one) gives back its unused room,
    /// so a message kept for long holds little more than itself.
    fn seal(&mut self) {
        if self.filling.is_empty() {
            return;
        }
        if self.filling.len() < self.filling.capacity() / 4 {
            self.filling.shrink_to_fit();
        }
        self.sealed.push_back(Bytes::from(std::mem::take(&mut self.filling)));
    }
}

/// The payload bytes of a message or fragment event (0 for the others).
#[inline]
fn data_len(event: &Event) -> usize {
    match event {
        Event::Message(message) => message.len(),
        Event::Fragment { data, .. } => data.len(),
        _ => 0,
    }
}

/// Whether a small payload is UTF-8. The shortest are checked for ASCII first (most
/// text is), quicker than `simdutf8` sets up its vector loop; longer ones are quicker
/// with `simdutf8` alone (bench/README.md, "Why the small paths look as they do").
#[inline(always)]
fn is_utf8_small(payload: &[u8]) -> bool {
    (payload.len() <= 32 && payload.is_ascii()) || simdutf8::basic::from_utf8(payload).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::apply_mask;

    fn masked(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut wire = payload.to_vec();
        apply_mask(&mut wire, mask, 0);
        wire
    }

    #[test]
    fn small_messages_across_many_blocks_keep_their_order_and_bytes() {
        let mut queue = EventQueue::default();
        let mut expected = Vec::new();
        for index in 0..2_000usize {
            let payload: Vec<u8> = (0..index % (SMALL_MESSAGE_MAX + 1))
                .map(|i| (i + index) as u8)
                .collect();
            let mask = [index as u8, 1, 2, 3];
            queue
                // Reads of all sizes: blocks sized to what is left of them, or full ones.
                .push_small(
                    MessageKind::Binary,
                    &masked(&payload, mask),
                    Some(mask),
                    payload.len() + index % 3 * 5000,
                )
                .unwrap();
            expected.push(Event::Message(Message::Binary(payload.into())));
            if index % 7 == 0 {
                queue.push(Event::Ping(Bytes::from(vec![index as u8])));
                expected.push(Event::Ping(Bytes::from(vec![index as u8])));
            }
            // Pull some as we go, asking first what comes next, as adapters do between reads.
            if index % 300 == 299 {
                for _ in 0..100 {
                    let (waiting, next_is_data) = (!queue.is_empty(), queue.next_is_data());
                    let pulled = queue.pop();
                    assert_eq!(waiting, pulled.is_some());
                    assert_eq!(next_is_data, matches!(pulled, Some(Event::Message(_))));
                    assert_eq!(pulled.as_ref(), Some(&expected.remove(0)));
                }
            }
        }
        let mut pulled = Vec::new();
        while let Some(event) = queue.pop() {
            pulled.push(event);
        }
        assert_eq!(pulled, expected);
        assert!(queue.sealed.is_empty() && queue.reading.is_empty() && queue.filling.capacity() == 0);
        assert!(queue.entries.capacity() == 0 && queue.small.capacity() == 0);
    }

    #[test]
    fn invalid_small_text_is_refused_and_leaves_nothing_behind() {
        let mut queue = EventQueue::default();
        queue
            .push_small(MessageKind::Text, "héllo".as_bytes(), None, 100)
            .unwrap();
        assert!(queue.push_small(MessageKind::Text, &[0xC3, 0x28], None, 2).is_err());
        assert_eq!(queue.pop(), Some(Event::Message(Message::text("héllo"))));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn empty_messages_need_no_block() {
        let mut queue = EventQueue::default();
        queue.push_small(MessageKind::Text, &[], Some([1, 2, 3, 4]), 0).unwrap();
        queue.push_small(MessageKind::Binary, &[], None, 0).unwrap();
        assert!(queue.filling.capacity() == 0);
        assert_eq!(queue.pop(), Some(Event::Message(Message::text(""))));
        assert_eq!(queue.pop(), Some(Event::Message(Message::Binary(Bytes::new()))));
    }
}
