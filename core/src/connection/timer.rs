//! Timers: keepalive pings and the idle, pong and closing deadlines.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::event::{CloseReason, Timeout};
use crate::frame::OpCode;
use crate::message::CloseCode;

use super::{deadline, Connection, Phase};

/// The keepalive interval, if any (a zero interval would ping in a busy loop: none).
pub(super) fn ping_interval(config: &Config) -> Option<Duration> {
    config.ping_interval.filter(|interval| !interval.is_zero())
}

impl Connection {
    // ---- inputs ----

    /// Reports that the time from [`poll_timeout`](Self::poll_timeout) has come. Early or
    /// repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Open => {
                if self.pong_deadline.is_some_and(|deadline| now >= deadline) {
                    self.pong_deadline = None;
                    self.queue_close_frame(CloseCode::INTERNAL_ERROR, "keepalive ping timeout");
                    self.queue_shutdown();
                    self.finish(now, CloseReason::TimedOut(Timeout::Keepalive));
                    return;
                }
                // (Not while input is held: the rest of the message may be in it.)
                if self.message_deadline.is_some_and(|at| now >= at) && self.held.is_none() {
                    self.message_deadline = None;
                    self.fail_with_timeout(now, CloseCode::POLICY_VIOLATION, "message timeout", Timeout::Message);
                    return;
                }
                if let Some(idle) = self.config.idle_timeout {
                    if now >= deadline(self.last_received, idle) {
                        self.start_close(now, CloseCode::GOING_AWAY, "idle timeout");
                        return;
                    }
                }
                if self.next_ping.is_some_and(|at| now >= at) {
                    self.send_keepalive_ping(now);
                }
            }
            Phase::CloseSent { deadline } if now >= deadline => {
                self.queue_shutdown();
                self.finish(now, CloseReason::TimedOut(Timeout::Close));
            }
            Phase::AwaitingEof { deadline, reason } if now >= deadline => {
                self.queue_shutdown();
                self.finish(now, reason);
            }
            Phase::Draining { deadline, reason } if now >= deadline => {
                self.finish(now, reason);
            }
            Phase::Done { linger: Some(linger) } if now >= linger => {
                // The peer had the close timeout to take the last bytes: whatever is left
                // is dropped, and so may the transport be.
                self.phase = Phase::Done { linger: None };
                self.drop_transmits();
            }
            _ => {}
        }
    }

    // ---- outputs ----

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Open => {
                let idle = self.config.idle_timeout.map(|idle| deadline(self.last_received, idle));
                let message = self.message_deadline.filter(|_| self.held.is_none());
                [self.next_ping, self.pong_deadline, idle, message]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Phase::CloseSent { deadline } | Phase::AwaitingEof { deadline, .. } | Phase::Draining { deadline, .. } => {
                Some(*deadline)
            }
            // The end: how long the last bytes may take to be written.
            Phase::Done { linger } => *linger,
            // Waiting for the application to pull its events: no timer of ours runs.
            Phase::CloseReceived { .. } | Phase::Failing { .. } => None,
        }
    }

    // ---- keepalive ----

    fn send_keepalive_ping(&mut self, now: Instant) {
        self.ping_count = self.ping_count.wrapping_add(1);
        let payload = Bytes::copy_from_slice(&self.ping_count.to_be_bytes());
        self.queue_frame(OpCode::Ping, true, &payload);
        if self.pong_deadline.is_none() {
            self.pong_deadline = Some(deadline(now, self.config.pong_timeout));
        }
        self.next_ping = ping_interval(&self.config).map(|interval| deadline(now, interval));
    }
}
