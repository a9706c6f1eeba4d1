//! The chat behind the `chat` examples of wsflow-tokio and wsflow-axum: its page, its rooms
//! on a broadcast hub, and (with `--redis URL`) rooms shared by every process on one Redis.
//! Included by both (`#[path]`), so the chat is written once and each example only says how
//! a connection becomes a member.
//!
//! Protocol: a client connects to `/ws?room=NAME` (default `lobby`; letters, digits, `-`
//! and `_`, at most 32); its first text message is its nickname, every later one a line.
//! The server sends JSON objects, one per message: `hello` (room, nick, rooms), the room's
//! last 50 `line`s, then `line`, `join`, `leave` (each with `ts`, Unix milliseconds),
//! `online` (the nicknames in the room) and `dropped` (how many lines this member missed
//! for being slow: its queue holds 256, the oldest go first).
//!
//! Every line, join and leave is published once on the hub (framed once, compressed once
//! for every member: the server asks for `server_no_context_takeover`) and, with a Redis
//! bridge, relayed to the other processes. One observer per room and process follows the
//! room's events to keep its history and who is online, so a process knows the members of
//! the other processes that joined while it was up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite};
use wsflow_tokio::hub::{Delivery, Hub, HubConfig, SlowConsumer, Subscriber};
use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{Config, Error, Message, PreparedMessage, WebSocket};

const HISTORY_LINES: usize = 50;
const QUEUE_LINES: usize = 256;
const MAX_NICK_CHARS: usize = 32;
const MAX_LINE_BYTES: usize = 4096;
const MAX_ROOM_CHARS: usize = 32;
/// Rooms this process keeps state for at most (each costs an observer and its history).
const MAX_ROOMS: usize = 1000;
/// Nicknames a room's online list holds at most.
const MAX_ONLINE: usize = 10_000;

/// permessage-deflate (browsers offer it, chat text compresses well) without server
/// context takeover, so that a line is compressed once for the whole room; messages of at
/// most 64 KiB.
pub static CONFIG: LazyLock<Arc<Config>> = LazyLock::new(|| {
    let mut config = Config::default();
    config
        .deflate(Some(DeflateConfig::default().server_no_context_takeover(true).clone()))
        .max_message_size(64 << 10)
        .ping_interval(Some(Duration::from_secs(30)));
    Arc::new(config)
});

/// Binds the example's address and makes its chat, from its arguments `[ADDR] [--redis
/// URL]`, and says where to point a browser.
pub async fn start(name: &str) -> std::io::Result<(tokio::net::TcpListener, Arc<Chat>)> {
    let (addr, redis) = args();
    let chat = Chat::new(redis.as_deref()).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "{name}: open http://{}/ in two browser tabs ({})",
        listener.local_addr()?,
        chat.describe().await
    );
    Ok((listener, chat))
}

/// The example's arguments: `[ADDR] [--redis URL]`.
fn args() -> (String, Option<String>) {
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut redis = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => redis = args.next(),
            other => addr = other.to_owned(),
        }
    }
    (addr, redis)
}

/// Every room of this process: the hub, the optional Redis bridge, and what each room's
/// observer keeps.
pub struct Chat {
    hub: Hub,
    redis: Option<wsflow_redis::RedisBridge>,
    rooms: Mutex<HashMap<String, Arc<RoomState>>>,
}

#[derive(Default)]
struct RoomState {
    /// Members of this process in the room.
    local_members: Mutex<usize>,
    history: Mutex<VecDeque<PreparedMessage>>,
    /// Everyone in the room this process knows of (nickname: connections).
    online: Mutex<BTreeMap<String, usize>>,
    observer: Mutex<Option<Subscriber>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Chat {
    /// A chat on this process only, or shared through the Redis at `redis`.
    pub fn new(redis: Option<&str>) -> Result<Arc<Self>, String> {
        let hub = Hub::new(HubConfig {
            queue_len: QUEUE_LINES,
            slow_consumer: SlowConsumer::DropOldest,
            ..HubConfig::default()
        });
        let redis = match redis {
            Some(url) => Some(
                wsflow_redis::RedisBridge::start(hub.clone(), url, wsflow_redis::BridgeConfig::default())
                    .map_err(|error| format!("--redis {url}: {error}"))?,
            ),
            None => None,
        };
        Ok(Arc::new(Self {
            hub,
            redis,
            rooms: Mutex::new(HashMap::new()),
        }))
    }

    /// Waits (at most 5 s) for the Redis bridge, if any; says how it went.
    pub async fn describe(&self) -> String {
        match &self.redis {
            None => "rooms on this process only".to_owned(),
            Some(bridge) if bridge.wait_subscribed(Duration::from_secs(5)).await => {
                "rooms shared through Redis".to_owned()
            }
            Some(_) => "Redis unreachable for now: serving local members, retrying".to_owned(),
        }
    }

    /// Publishes an event: through Redis too when bridged.
    fn publish(&self, room: &str, event: String) {
        let message = Message::text(event);
        match &self.redis {
            Some(bridge) => bridge.publish(room, message),
            None => self.hub.publish(room, message),
        };
    }

    /// The room's state, made (with its observer) for its first local member.
    fn enter(self: &Arc<Self>, room: &str) -> Option<Arc<RoomState>> {
        let mut rooms = lock(&self.rooms);
        if let Some(state) = rooms.get(room) {
            *lock(&state.local_members) += 1;
            return Some(state.clone());
        }
        if rooms.len() >= MAX_ROOMS {
            return None;
        }
        let state = Arc::new(RoomState::default());
        *lock(&state.local_members) = 1;
        let observer = self.hub.subscriber();
        observer.subscribe(room);
        *lock(&state.observer) = Some(observer.clone());
        rooms.insert(room.to_owned(), state.clone());
        tokio::spawn(observe(self.clone(), room.to_owned(), state.clone(), observer));
        Some(state)
    }

    /// A local member left: the room's state goes with its last local member.
    fn leave(&self, room: &str, state: &RoomState) {
        let mut rooms = lock(&self.rooms);
        let mut members = lock(&state.local_members);
        *members -= 1;
        if *members == 0 {
            rooms.remove(room);
            if let Some(observer) = lock(&state.observer).take() {
                observer.close();
            }
        }
    }

    fn rooms_json(&self) -> String {
        let rooms = lock(&self.rooms);
        let mut names: Vec<(&String, usize)> = rooms
            .iter()
            .map(|(name, state)| (name, lock(&state.online).values().sum()))
            .collect();
        names.sort();
        let items: Vec<String> = names
            .iter()
            .map(|(name, online)| format!("[{},{online}]", json_string(name)))
            .collect();
        format!("[{}]", items.join(","))
    }
}

/// Follows a room's events: its history and who is online; tells the local members when
/// the online list changes.
async fn observe(chat: Arc<Chat>, room: String, state: Arc<RoomState>, observer: Subscriber) {
    let mut batch = Vec::new();
    while let Delivery::Messages { .. } = observer.next_batch(&mut batch).await {
        let mut online_changed = false;
        for event in batch.drain(..) {
            let Message::Text(text) = event.message() else { continue };
            let Some(kind) = event_type(text) else { continue };
            match kind {
                "line" => {
                    let mut history = lock(&state.history);
                    if history.len() == HISTORY_LINES {
                        history.pop_front();
                    }
                    history.push_back(event.clone());
                }
                "join" | "leave" => {
                    // Events may come from other processes through Redis: as hostile as any
                    // peer's, so the nickname is cut as a local one is and the list is bounded.
                    let Some(nick) = field(text, "nick").map(|nick| nickname(&nick)) else {
                        continue;
                    };
                    let mut online = lock(&state.online);
                    if kind == "join" && !online.contains_key(&nick) && online.len() >= MAX_ONLINE {
                        continue;
                    }
                    let count = online.entry(nick).or_default();
                    if kind == "join" {
                        *count += 1;
                    } else {
                        *count = count.saturating_sub(1);
                    }
                    online.retain(|_, count| *count > 0);
                    online_changed = true;
                }
                _ => {}
            }
        }
        if online_changed {
            let nicks: Vec<String> = lock(&state.online).keys().map(|nick| json_string(nick)).collect();
            // Local members only: every process sends its own.
            chat.hub.publish(
                &room,
                Message::text(format!(r#"{{"type":"online","nicks":[{}]}}"#, nicks.join(","))),
            );
        }
    }
}

/// The room named in a request target's query (`?room=NAME`), if valid.
pub fn room_of(target: &str) -> Option<String> {
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let room = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("room="))
        .unwrap_or("lobby");
    let valid = !room.is_empty()
        && room.len() <= MAX_ROOM_CHARS
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then(|| room.to_owned())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `type` of one of our events (they start with it).
fn event_type(json: &str) -> Option<&str> {
    json.strip_prefix(r#"{"type":""#)?.split('"').next()
}

/// A string field of one of our events, unescaped enough for nicknames (no quotes or
/// backslashes in them: see `nickname`).
fn field(json: &str, name: &str) -> Option<String> {
    let start = json.find(&format!(r#""{name}":""#))? + name.len() + 4;
    Some(json[start..].split('"').next()?.to_owned())
}

/// A nickname from the first message: trimmed, at most 32 characters, no quotes,
/// backslashes or control characters.
fn nickname(text: &str) -> String {
    let nick: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(MAX_NICK_CHARS)
        .collect();
    if nick.is_empty() {
        "anonymous".to_owned()
    } else {
        nick
    }
}

/// A chat member from nickname to departure, on any upgraded stream.
pub async fn member<S>(websocket: WebSocket<S>, chat: &Arc<Chat>, room: &str) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, mut receiver) = websocket.split();
    let nick = match receiver.recv_message().await? {
        Some(Message::Text(nick)) => nickname(&nick),
        _ => return Ok(()),
    };
    let Some(state) = chat.enter(room) else {
        return sender
            .close(wsflow_tokio::CloseCode::TRY_AGAIN_LATER, "too many rooms")
            .await;
    };
    let subscriber = chat.hub.subscriber();
    subscriber.subscribe(room);
    let hello = format!(
        r#"{{"type":"hello","room":{},"nick":{},"rooms":{}}}"#,
        json_string(room),
        json_string(&nick),
        chat.rooms_json()
    );
    let history: Vec<PreparedMessage> = lock(&state.history).iter().cloned().collect();
    chat.publish(
        room,
        format!(r#"{{"type":"join","nick":{},"ts":{}}}"#, json_string(&nick), now_ms()),
    );
    let writer = tokio::spawn({
        let subscriber = subscriber.clone();
        async move {
            sender.send_text(hello).await?;
            for line in &history {
                sender.send_prepared(line).await?;
            }
            let notice = |count| Some(Message::text(format!(r#"{{"type":"dropped","count":{count}}}"#)));
            sender.forward(&subscriber, notice).await
        }
    });
    let read = async {
        while let Some(message) = receiver.recv_message().await? {
            if let Message::Text(text) = message {
                let line: String = text.chars().take(MAX_LINE_BYTES).collect();
                let event = format!(
                    r#"{{"type":"line","nick":{},"text":{},"ts":{}}}"#,
                    json_string(&nick),
                    json_string(&line),
                    now_ms()
                );
                chat.publish(room, event);
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    subscriber.close();
    chat.publish(
        room,
        format!(r#"{{"type":"leave","nick":{},"ts":{}}}"#, json_string(&nick), now_ms()),
    );
    chat.leave(room, &state);
    let written = writer.await.map_err(std::io::Error::other)?;
    read.and(written)
}

/// The page: rooms, who is online, timestamps, own lines set apart, the connection's
/// state, and reconnection with backoff (WebSocket at `/ws?room=NAME`).
pub const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>wsflow chat</title>
<style>
:root{--bg:#f6f7f9;--panel:#fff;--line:#e3e6ea;--ink:#1d2430;--muted:#6b7482;--accent:#2f6fde;--mine:#e8f0fe}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--ink);height:100vh;display:flex;flex-direction:column}
header{display:flex;align-items:center;gap:1em;padding:.6em 1em;background:var(--panel);border-bottom:1px solid var(--line)}
header h1{font-size:1.1em;margin:0}#status{margin-left:auto;font-size:.85em;color:var(--muted)}#status.up::before{content:"● ";color:#1a9c4a}#status.down::before{content:"● ";color:#d33}
main{flex:1;display:flex;min-height:0}aside{width:13em;background:var(--panel);border-right:1px solid var(--line);padding:.8em;overflow-y:auto}
aside h2{font-size:.8em;text-transform:uppercase;color:var(--muted);margin:.8em 0 .3em}aside ul{list-style:none;margin:0;padding:0}aside li{padding:.15em 0}
aside a{color:var(--ink);text-decoration:none}aside a.current{font-weight:600;color:var(--accent)}
#chat{flex:1;display:flex;flex-direction:column;min-width:0}#log{flex:1;overflow-y:auto;padding:.8em 1em}
.msg{max-width:46em;margin:.25em 0;padding:.35em .6em;border-radius:.5em;background:var(--panel);border:1px solid var(--line);overflow-wrap:anywhere}
.msg.mine{background:var(--mine);margin-left:auto}.msg .who{font-weight:600;margin-right:.4em}.msg time,.note time{color:var(--muted);font-size:.8em;margin-left:.5em}
.note{color:var(--muted);font-size:.85em;margin:.3em 0;text-align:center}.note.warn{color:#b25e00}
form{display:flex;gap:.5em;padding:.7em 1em;background:var(--panel);border-top:1px solid var(--line)}form input{flex:1;padding:.5em;font:inherit;border:1px solid var(--line);border-radius:.4em}
button{padding:.5em 1em;font:inherit;border:0;border-radius:.4em;background:var(--accent);color:#fff;cursor:pointer}
#join{margin:auto;flex-direction:column;max-width:22em;border:1px solid var(--line);border-radius:.6em}
#newroom{padding:.4em 0;border:0;background:none}#newroom input{min-width:0;width:100%}
</style></head><body>
<header><h1>wsflow chat</h1><span id="room"></span><span id="status" class="down">not connected</span></header>
<main><aside><h2>Rooms</h2><ul id="rooms"></ul><form id="newroom"><input id="roomname" placeholder="new room" maxlength="32" pattern="[A-Za-z0-9_-]+"></form><h2>Online</h2><ul id="online"></ul></aside>
<div id="chat"><form id="join"><label>Your nickname <input id="nick" maxlength="32" autofocus required></label><button>Join</button></form>
<div id="log" hidden></div><form id="say" hidden><input id="text" autocomplete="off" maxlength="4096" placeholder="Say something"><button>Send</button></form></div></main>
<script>
const $ = (id) => document.getElementById(id);
let socket, nick = "", room = (location.hash.slice(1) || "lobby"), retry = 0, timer;
const time = (ts) => { const t = document.createElement("time"); t.textContent = new Date(ts).toLocaleTimeString(); return t; };
function add(node) { const log = $("log"); const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 30; log.append(node); if (atEnd) log.scrollTop = log.scrollHeight; }
function note(text, ts, warn) { const n = document.createElement("div"); n.className = "note" + (warn ? " warn" : ""); n.textContent = text; if (ts) n.append(time(ts)); add(n); }
function status(text, up) { $("status").textContent = text; $("status").className = up ? "up" : "down"; }
function list(id, items, render) { const ul = $(id); ul.replaceChildren(...items.map((item) => { const li = document.createElement("li"); render(li, item); return li; })); }
function rooms(known) { if (!known.some(([name]) => name === room)) known.push([room, 0]); known.sort();
  list("rooms", known, (li, [name, online]) => { const a = document.createElement("a"); a.href = "#" + name; a.textContent = "# " + name + (online ? " (" + online + ")" : ""); if (name === room) a.className = "current"; li.append(a); }); }
function connect() {
  clearTimeout(timer);
  if (socket) { socket.onclose = null; socket.close(); }
  status("connecting…", false);
  $("room").textContent = "# " + room;
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?room=${encodeURIComponent(room)}`);
  socket.onopen = () => { retry = 0; socket.send(nick); $("log").replaceChildren(); status("connected", true); };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "hello") { rooms(m.rooms); note("You joined #" + m.room + " as " + m.nick); }
    else if (m.type === "line") { const d = document.createElement("div"); d.className = "msg" + (m.nick === nick ? " mine" : "");
      const who = document.createElement("span"); who.className = "who"; who.textContent = m.nick; d.append(who, document.createTextNode(m.text), time(m.ts)); add(d); }
    else if (m.type === "join") note(m.nick + " joined", m.ts);
    else if (m.type === "leave") note(m.nick + " left", m.ts);
    else if (m.type === "online") list("online", m.nicks, (li, n) => { li.textContent = n + (n === nick ? " (you)" : ""); });
    else if (m.type === "dropped") note(m.count + " message(s) skipped: this connection was too slow to keep up", 0, true);
  };
  socket.onclose = (event) => { const wait = Math.min(30000, 500 * 2 ** retry++);
    status(`disconnected (${event.code}${event.reason ? " " + event.reason : ""}), retrying in ${Math.round(wait / 1000)} s`, false);
    note("Disconnected, reconnecting…", Date.now(), true); timer = setTimeout(connect, wait); };
}
$("join").onsubmit = (event) => { event.preventDefault(); nick = $("nick").value.trim(); if (!nick) return;
  $("join").hidden = true; $("join").style.display = "none"; $("log").hidden = false; $("say").hidden = false; $("text").focus(); connect(); };
$("say").onsubmit = (event) => { event.preventDefault(); const text = $("text").value; if (text && socket && socket.readyState === 1) { socket.send(text); $("text").value = ""; } };
$("newroom").onsubmit = (event) => { event.preventDefault(); const name = $("roomname").value.trim(); if (/^[A-Za-z0-9_-]{1,32}$/.test(name)) location.hash = name; $("roomname").value = ""; };
window.onhashchange = () => { room = location.hash.slice(1) || "lobby"; if (nick) connect(); };
</script></body></html>
"##;
