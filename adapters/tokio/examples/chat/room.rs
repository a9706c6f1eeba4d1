//! The chat room behind the `chat` examples of wsflow-tokio and wsflow-axum: its page,
//! its members and their broadcast. Included by both (`#[path]`), so the room is written
//! once and each example only says how a connection becomes a member.
//!
//! Protocol: a client's first text message is its nickname; the server broadcasts
//! `* nick joined`, `nick: text` and `* nick left` to everyone and sends a newcomer the
//! last 50 lines. Each client has a queue of 256 lines; a client too slow to drain it is
//! disconnected with 1008 instead of stalling the room.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use wsflow_tokio::wsflow::Utf8Bytes;
use wsflow_tokio::{CloseCode, Error, Message, WebSocket, WsSender};

const HISTORY_LINES: usize = 50;
const QUEUE_LINES: usize = 256;
const MAX_NICK_CHARS: usize = 32;

/// The page: join with a nickname, then read and write lines (WebSocket at `/ws`).
pub const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>wsflow chat</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}#log{height:60vh;overflow-y:auto;border:1px solid #ccc;padding:.5em;white-space:pre-wrap}#chat{display:none}</style>
</head><body>
<h1>wsflow chat</h1>
<form id="join"><input id="nick" placeholder="nickname" autofocus required> <button>Join</button></form>
<div id="chat"><div id="log"></div><form id="say"><input id="text" size="50" autocomplete="off"> <button>Send</button></form></div>
<script>
const $ = (id) => document.getElementById(id);
let socket;
$("join").onsubmit = (event) => {
  event.preventDefault();
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onopen = () => { socket.send($("nick").value); $("join").style.display = "none"; $("chat").style.display = "block"; $("text").focus(); };
  socket.onmessage = (message) => { const line = document.createElement("div"); line.textContent = message.data; $("log").append(line); $("log").scrollTop = $("log").scrollHeight; };
  socket.onclose = (close) => { const line = document.createElement("div"); line.textContent = `* disconnected (${close.code} ${close.reason})`; $("log").append(line); };
};
$("say").onsubmit = (event) => { event.preventDefault(); if ($("text").value) socket.send($("text").value); $("text").value = ""; };
</script>
</body></html>
"#;

/// A chat member from nickname to departure, on any upgraded stream.
pub async fn member<S>(websocket: WebSocket<S>, room: &Room) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut receiver) = websocket.split();
    let nick = match receiver.recv_message().await? {
        Some(Message::Text(nick)) => nick.trim().chars().take(MAX_NICK_CHARS).collect::<String>(),
        _ => return Ok(()),
    };
    let nick = if nick.is_empty() { "anonymous".to_owned() } else { nick };
    let (lines, queue) = mpsc::channel(QUEUE_LINES);
    let too_slow = Arc::new(Notify::new());
    let writer = tokio::spawn(write_lines(sender, queue, too_slow.clone()));
    let id = room.join(&nick, Member { lines, too_slow });
    while let Some(message) = receiver.recv_message().await? {
        if let Message::Text(text) = message {
            room.broadcast(format!("{nick}: {text}"));
        }
    }
    room.leave(id, &nick);
    writer.await.map_err(std::io::Error::other)?
}

/// Writes the member's queued lines; closes with 1008 if the room gave up on it.
async fn write_lines<S: AsyncRead + AsyncWrite + Unpin>(
    mut sender: WsSender<S>,
    mut queue: mpsc::Receiver<Utf8Bytes>,
    too_slow: Arc<Notify>,
) -> Result<(), Error> {
    let forward = async {
        while let Some(line) = queue.recv().await {
            sender.send_text(line).await?;
        }
        Ok(())
    };
    tokio::select! {
        forwarded = forward => forwarded,
        () = too_slow.notified() => sender.close(CloseCode::POLICY_VIOLATION, "too slow").await,
    }
}

/// A member's queue, and how the room tells it that it fell too far behind.
struct Member {
    lines: mpsc::Sender<Utf8Bytes>,
    too_slow: Arc<Notify>,
}

/// The members and the last lines.
#[derive(Default)]
pub struct Room {
    state: Mutex<RoomState>,
}

#[derive(Default)]
struct RoomState {
    members: HashMap<u64, Member>,
    history: VecDeque<Utf8Bytes>,
    next_id: u64,
}

impl Room {
    fn state(&self) -> std::sync::MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a member: it gets the history, then everyone gets the join notice.
    fn join(&self, nick: &str, member: Member) -> u64 {
        let id = {
            let mut state = self.state();
            for line in &state.history {
                // The history (50 lines) fits the fresh queue (256).
                let _ = member.lines.try_send(line.clone());
            }
            state.next_id += 1;
            let id = state.next_id;
            state.members.insert(id, member);
            id
        };
        self.broadcast(format!("* {nick} joined"));
        id
    }

    fn leave(&self, id: u64, nick: &str) {
        if self.state().members.remove(&id).is_some() {
            self.broadcast(format!("* {nick} left"));
        }
    }

    /// Queues `line` for every member, never waiting: a member whose queue is full is
    /// dropped from the room and disconnected.
    fn broadcast(&self, line: String) {
        let line = Utf8Bytes::from(line);
        let mut state = self.state();
        if state.history.len() == HISTORY_LINES {
            state.history.pop_front();
        }
        state.history.push_back(line.clone());
        state
            .members
            .retain(|_, member| match member.lines.try_send(line.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.too_slow.notify_one();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }
}
