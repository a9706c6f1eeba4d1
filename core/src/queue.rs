//! The events waiting to be pulled.
//!
//! Small whole messages are the common case of a busy connection (chat lines, game state,
//! JSON ticks), so they get a cheap path: their payloads are copied and unmasked into a
//! shared block, and each waits in the queue as a few numbers until it is pulled, when it
//! becomes a slice of its block. A busy read fills blocks of [`BLOCK_SIZE`] bytes: one
//! allocation for many messages, and no `Bytes` is built for a message before the
//! application asks. Blocks are released as soon as no queued message refers to them, so an
//! idle connection holds none; a message kept for long pins at most its block, and a block
//! sealed mostly empty (a read of one small message) is shrunk to what it holds.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::Event;
use crate::frame::{apply_mask, extend_unmasked};
use crate::message::{Message, MessageKind, Utf8Bytes};

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
    entries: VecDeque<Entry>,
    /// Where the queued small messages are in their blocks (`start..end`), in order.
    ranges: VecDeque<[u16; 2]>,
    /// Sealed blocks that queued messages refer to, oldest first.
    blocks: VecDeque<Bytes>,
    /// The number of the block at the front of `blocks` (blocks are numbered in order).
    first_block: u32,
    /// The block being filled; it is sealed when full or when an event is pulled.
    filling: Vec<u8>,
}

#[derive(Debug)]
enum Entry {
    Event(Event),
    /// A run of `count` small messages of one kind in block number `block`: the next
    /// `count` of `ranges`. (A run costs one entry, so a read of many small messages
    /// queues a few bytes per message.)
    Small {
        kind: MessageKind,
        block: u32,
        count: u32,
    },
}

impl EventQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn push(&mut self, event: Event) {
        self.entries.push_back(Entry::Event(event));
    }

    /// Queues a whole message of at most [`SMALL_MESSAGE_MAX`] bytes, given as they arrived
    /// (masked with `mask`, if set). Text is validated here, so that a bad message fails
    /// the connection before the frames that follow it are read.
    #[inline]
    pub(crate) fn push_small(
        &mut self,
        kind: MessageKind,
        wire: &[u8],
        mask: Option<[u8; 4]>,
    ) -> Result<(), InvalidUtf8> {
        debug_assert!(wire.len() <= SMALL_MESSAGE_MAX);
        if wire.is_empty() {
            let empty = match kind {
                MessageKind::Binary => Message::Binary(Bytes::new()),
                MessageKind::Text => Message::Text(Utf8Bytes::new()),
            };
            self.push(Event::Message(empty));
            return Ok(());
        }
        if BLOCK_SIZE - self.filling.len() < wire.len() {
            self.seal();
        }
        if self.filling.capacity() == 0 {
            self.filling.reserve_exact(BLOCK_SIZE);
        }
        let start = self.filling.len();
        match mask {
            // A plain copy, then the mask over a few words: cheaper than the vector loop of
            // `extend_unmasked` for the shortest messages.
            Some(mask) if wire.len() <= 128 => {
                self.filling.extend_from_slice(wire);
                apply_mask(&mut self.filling[start..], mask, 0);
            }
            _ => extend_unmasked(&mut self.filling, wire, mask, 0),
        }
        if kind == MessageKind::Text && simdutf8::basic::from_utf8(&self.filling[start..]).is_err() {
            self.filling.truncate(start);
            return Err(InvalidUtf8);
        }
        // Offsets within a block fit in 16 bits (BLOCK_SIZE <= 65,536).
        self.ranges.push_back([start as u16, self.filling.len() as u16]);
        let block = self.filling_number();
        match self.entries.back_mut() {
            Some(Entry::Small {
                kind: run_kind,
                block: run_block,
                count,
            }) if *run_kind == kind && *run_block == block => *count += 1,
            _ => self.entries.push_back(Entry::Small { kind, block, count: 1 }),
        }
        Ok(())
    }

    /// The next event, without pulling it (a small message is built and queued as an event).
    pub(crate) fn peek(&mut self) -> Option<&Event> {
        if let Some(Entry::Small { .. }) = self.entries.front() {
            let event = self.take_front()?;
            self.entries.push_front(Entry::Event(event));
        }
        match self.entries.front()? {
            Entry::Event(event) => Some(event),
            Entry::Small { .. } => None,
        }
    }

    /// Pulls the next event.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Event> {
        let event = self.take_front()?;
        if self.entries.is_empty() {
            // An idle connection holds no queue and no block.
            *self = Self {
                first_block: self.filling_number(),
                ..Self::default()
            };
        }
        Some(event)
    }

    #[inline]
    fn take_front(&mut self) -> Option<Event> {
        let (kind, block) = match self.entries.front_mut()? {
            // A run goes on: one message fewer, in place.
            Entry::Small { kind, block, count } if *count > 1 => {
                *count -= 1;
                (*kind, *block)
            }
            _ => match self.entries.pop_front()? {
                Entry::Event(event) => return Some(event),
                Entry::Small { kind, block, .. } => (kind, block),
            },
        };
        Some(self.small_message(kind, block))
    }

    /// The next small message, of `kind` in block number `block`: a slice of that block,
    /// which is the oldest one any queued message refers to.
    #[inline]
    fn small_message(&mut self, kind: MessageKind, block: u32) -> Event {
        let [start, end] = self.ranges.pop_front().unwrap_or_default();
        self.seal();
        // Earlier blocks have no queued messages left.
        while self.first_block != block {
            self.blocks.pop_front();
            self.first_block = self.first_block.wrapping_add(1);
        }
        let payload = self.blocks[0].slice(usize::from(start)..usize::from(end));
        Event::Message(match kind {
            MessageKind::Binary => Message::Binary(payload),
            MessageKind::Text => {
                Message::Text(Utf8Bytes::try_from(payload).expect("small text is validated when queued"))
            }
        })
    }

    /// The number the block being filled will have.
    fn filling_number(&self) -> u32 {
        self.first_block.wrapping_add(self.blocks.len() as u32)
    }

    /// Moves the block being filled, if any, to the sealed ones. A block sealed mostly
    /// empty (a read of one small message, pulled at once) gives back its unused room, so
    /// a message kept for long holds little more than itself.
    fn seal(&mut self) {
        if self.filling.is_empty() {
            return;
        }
        if self.filling.len() < BLOCK_SIZE / 4 {
            self.filling.shrink_to_fit();
        }
        self.blocks.push_back(Bytes::from(std::mem::take(&mut self.filling)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                .push_small(MessageKind::Binary, &masked(&payload, mask), Some(mask))
                .unwrap();
            expected.push(Event::Message(Message::Binary(payload.into())));
            if index % 7 == 0 {
                queue.push(Event::Ping(Bytes::from(vec![index as u8])));
                expected.push(Event::Ping(Bytes::from(vec![index as u8])));
            }
            // Pull some as we go, peeking first, as adapters do between reads.
            if index % 300 == 299 {
                for _ in 0..100 {
                    let peeked = queue.peek().cloned();
                    let pulled = queue.pop();
                    assert_eq!(peeked, pulled);
                    assert_eq!(pulled.as_ref(), Some(&expected.remove(0)));
                }
            }
        }
        let mut pulled = Vec::new();
        while let Some(event) = queue.pop() {
            pulled.push(event);
        }
        assert_eq!(pulled, expected);
        assert!(queue.blocks.is_empty() && queue.filling.capacity() == 0 && queue.entries.capacity() == 0);
        assert!(queue.ranges.capacity() == 0);
    }

    #[test]
    fn invalid_small_text_is_refused_and_leaves_nothing_behind() {
        let mut queue = EventQueue::default();
        queue.push_small(MessageKind::Text, "héllo".as_bytes(), None).unwrap();
        assert!(queue.push_small(MessageKind::Text, &[0xC3, 0x28], None).is_err());
        assert_eq!(queue.pop(), Some(Event::Message(Message::text("héllo"))));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn empty_messages_need_no_block() {
        let mut queue = EventQueue::default();
        queue.push_small(MessageKind::Text, &[], Some([1, 2, 3, 4])).unwrap();
        queue.push_small(MessageKind::Binary, &[], None).unwrap();
        assert!(queue.filling.capacity() == 0);
        assert_eq!(queue.pop(), Some(Event::Message(Message::text(""))));
        assert_eq!(queue.pop(), Some(Event::Message(Message::Binary(Bytes::new()))));
    }
}
