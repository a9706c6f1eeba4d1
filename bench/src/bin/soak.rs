//! Soak: mixed traffic against echo servers for as long as asked, with the server's memory,
//! file descriptors, errors and round-trip latency reported over time.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml --bin soak -- \
//!     --secs 600 --server 'wsflow-tokio=target/examples-tokio/echo-server 127.0.0.1:{port}'
//! ```
//!
//! (`bench/soak.sh SECS` builds the adapters' echo servers and runs them all, with Node `ws`
//! and Python `websockets` when `tests/peers/setup.sh` has installed them.)
//!
//! Each `--server NAME=COMMAND` is started in turn (`{port}` in the command is replaced by
//! a free loopback port) and driven by `--connections` (default 32) client tasks on
//! wsflow-tokio's client, each running sessions until the time is up. A session connects
//! (permessage-deflate offered every other time), then does 1 to 40 (`--max-ops`) of: a message of 0 B
//! to 1 MiB (sizes spread evenly over the powers of two, text or binary, one in five sent
//! in 2 to 5 fragments) and its echo, compared byte for byte; a ping and its pong; a burst
//! of 8 messages of 16 KiB read back only after 500 ms (a slow reader, so the server's
//! sends wait); then ends with a clean close (3 in 4) or by dropping the TCP connection
//! without a close frame. Anything else the server does (a wrong echo, an unexpected
//! close, a failed connect) counts as an error, the first few printed.
//!
//! Every second: the server's VmRSS and open file descriptors (/proc), round trips done,
//! their p50/p99, errors. At the end, for each server: whether RSS stayed flat after the
//! warm-up (the first fifth of the run, at least 10 s): the peak over the second half of the
//! run against the peak between warm-up and half time, flat within 10 % + 4 MiB
//! (`--rss-slack-mib` sets the 4); and whether the descriptors went back to where they were
//! before the load. With `--strict` the exit status is 1 when any server has errors, grew,
//! or kept descriptors open.
//!
//! `--storm N` runs another scenario instead: N connections opened as fast as the server
//! takes them (256 handshakes in flight, deflate offered by every other one), each echoing
//! one message; then all N echo once more, at once; then they all vanish (TCP dropped, no
//! close frame). Reported: connect+upgrade rate, server RSS per open connection, errors
//! (any failed connect or echo), and whether the server's descriptors came back to where
//! they were. Raise `ulimit -n` first (bench/soak.sh does).
//!
//! `soak --serve VARIANT ADDR` is a wsflow-tokio echo server (as the adapter's
//! `echo-server` example) with permessage-deflate configured as VARIANT says: `default`,
//! `window12` (the server asks a client that offers `client_max_window_bits` for 12 bits:
//! it saves nothing, as zlib-rs's inflater holds a 32 KiB window whatever the bits) or
//! `no-takeover` (`server_no_context_takeover`: no compressor per
//! connection), for the `--chat` comparison.
//!
//! `--chat N` measures what a chat room at rest costs: N connections, each sending 100
//! chat-like JSON messages (about 150-250 bytes) and reading their echoes (100 each way),
//! then idle; the server's RSS growth per connection, with permessage-deflate not offered
//! and offered (as browsers offer it: `client_max_window_bits` without a value), each on a
//! fresh server process.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsflow::{CloseCode, Config, DeflateConfig, Event, Message};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MIB: f64 = 1024.0 * 1024.0;

struct Args {
    seconds: u64,
    connections: usize,
    servers: Vec<(String, String)>,
    strict: bool,
    rss_slack_mib: f64,
    storm: Option<usize>,
    chat: Option<usize>,
    max_ops: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 60,
        connections: 32,
        servers: Vec::new(),
        strict: false,
        rss_slack_mib: 4.0,
        storm: None,
        chat: None,
        max_ops: 40,
    };
    let mut rest = std::env::args().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--secs" => args.seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--connections" => args.connections = rest.next().and_then(|s| s.parse().ok()).expect("--connections N"),
            "--server" => {
                let spec = rest.next().expect("--server NAME=COMMAND");
                let (name, command) = spec.split_once('=').expect("--server NAME=COMMAND");
                args.servers.push((name.to_owned(), command.to_owned()));
            }
            "--strict" => args.strict = true,
            "--rss-slack-mib" => {
                args.rss_slack_mib = rest.next().and_then(|s| s.parse().ok()).expect("--rss-slack-mib MIB")
            }
            "--max-ops" => args.max_ops = rest.next().and_then(|s| s.parse().ok()).expect("--max-ops N"),
            "--chat" => args.chat = Some(rest.next().and_then(|s| s.parse().ok()).expect("--chat N")),
            "--storm" => args.storm = Some(rest.next().and_then(|s| s.parse().ok()).expect("--storm N")),
            other => panic!("unknown argument {other} (see the source's header)"),
        }
    }
    assert!(!args.servers.is_empty(), "no --server NAME=COMMAND given");
    args
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if let [_, flag, variant, addr] = raw.as_slice() {
        if flag == "--serve" {
            return serve(variant, addr);
        }
    }
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(count) = args.storm {
        return storm_all(&runtime, &args, count);
    }
    if let Some(count) = args.chat {
        return chat_all(&runtime, &args, count);
    }
    let mut verdicts = Vec::new();
    for (name, command) in &args.servers {
        println!(
            "\n== soak: {name}, {} s, {} connections",
            args.seconds, args.connections
        );
        let verdict = runtime
            .block_on(soak(name, command, &args))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        verdicts.push(verdict);
    }
    println!("\n| server | sessions | round trips | errors | p50 ms | p99 ms | RSS after warm-up MiB | RSS peak, 2nd half MiB | growth | fds before / after |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let mut failed = false;
    for verdict in &verdicts {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} / {} |",
            verdict.name,
            verdict.sessions,
            verdict.round_trips,
            verdict.errors,
            verdict.p50_ms,
            verdict.p99_ms,
            verdict.rss_settled / MIB,
            verdict.rss_late / MIB,
            if verdict.flat(args.rss_slack_mib) {
                "flat"
            } else {
                "GREW"
            },
            verdict.fds_before,
            verdict.fds_after,
        );
        failed |= verdict.errors > 0 || !verdict.flat(args.rss_slack_mib) || verdict.fds_after > verdict.fds_before;
    }
    if args.strict && failed {
        eprintln!("soak: FAILED (errors, RSS growth after warm-up, or descriptors left open)");
        std::process::exit(1);
    }
}

struct Verdict {
    name: String,
    sessions: u64,
    round_trips: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// Peak RSS between the warm-up and half time.
    rss_settled: f64,
    /// Peak RSS over the second half.
    rss_late: f64,
    fds_before: usize,
    fds_after: usize,
}

impl Verdict {
    fn flat(&self, slack_mib: f64) -> bool {
        self.rss_late <= self.rss_settled * 1.10 + slack_mib * MIB
    }
}

/// What the client tasks report, shared with the sampler.
#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    round_trips: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    first_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("soak: error: {what}");
            self.first_errors.lock().unwrap().push(what);
        }
    }
}

async fn soak(name: &str, command: &str, args: &Args) -> Result<Verdict> {
    let server = Server::start(command).await?;
    let fds_before = server.fds()?;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let mut tasks = Vec::new();
    for task in 0..args.connections {
        let (tally, stop, url, max_ops) = (tally.clone(), stop.clone(), url.clone(), args.max_ops);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x5eed_0000 + task as u64);
            while !stop.load(Ordering::Relaxed) {
                if let Err(error) = session(&url, max_ops, &mut rng, &tally).await {
                    tally.error(error.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }

    let started = Instant::now();
    let total = Duration::from_secs(args.seconds);
    let warm_up = (total / 5).max(Duration::from_secs(10)).min(total / 2);
    let mut samples: Vec<(Duration, f64)> = Vec::new();
    let mut all_latencies = Vec::new();
    let mut last_trips = 0;
    println!(" t s | RSS MiB | fds | round trips/s | p50 ms | p99 ms | errors");
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = server.rss()?;
        let elapsed = started.elapsed();
        samples.push((elapsed, rss));
        let mut latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
        latencies.sort();
        let trips = tally.round_trips.load(Ordering::Relaxed);
        println!(
            "{:4.0} | {:7.1} | {:3} | {:13} | {:6.2} | {:6.2} | {}",
            elapsed.as_secs_f64(),
            rss / MIB,
            server.fds()?,
            trips - last_trips,
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            tally.errors.load(Ordering::Relaxed),
        );
        last_trips = trips;
        all_latencies.extend(latencies);
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    // The server closes its side of every connection the clients dropped: wait for its
    // descriptors to come back (its close timeout is at most 10 s by default).
    let mut fds_after = server.fds()?;
    let settle = Instant::now();
    while fds_after > fds_before && settle.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_after = server.fds()?;
    }
    all_latencies.sort();
    let half = total / 2;
    let peak = |from: Duration, to: Duration| {
        samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, rss)| *rss)
            .fold(0.0, f64::max)
    };
    Ok(Verdict {
        name: name.to_owned(),
        sessions: tally.sessions.load(Ordering::Relaxed),
        round_trips: tally.round_trips.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        p50_ms: percentile_ms(&all_latencies, 0.50),
        p99_ms: percentile_ms(&all_latencies, 0.99),
        rss_settled: peak(warm_up, half),
        rss_late: peak(half, total + Duration::from_secs(1)),
        fds_before,
        fds_after,
    })
}

fn storm_all(runtime: &tokio::runtime::Runtime, args: &Args, count: usize) {
    let mut rows = Vec::new();
    for (name, command) in &args.servers {
        println!("\n== storm: {name}, {count} connections");
        let row = runtime
            .block_on(storm(command, count))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        rows.push((name, row));
    }
    println!(
        "\n| server | connections | connect+upgrade /s | RSS KiB per connection | errors | fds before / open / after |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    let mut failed = false;
    for (name, row) in &rows {
        println!(
            "| {name} | {count} | {:.0} | {:.1} | {} | {} / {} / {} |",
            row.rate, row.kib_per_connection, row.errors, row.fds_before, row.fds_open, row.fds_after
        );
        failed |= row.errors > 0 || row.fds_after > row.fds_before;
    }
    if args.strict && failed {
        eprintln!("storm: FAILED (errors, or descriptors left open)");
        std::process::exit(1);
    }
}

struct StormRow {
    rate: f64,
    kib_per_connection: f64,
    errors: usize,
    fds_before: usize,
    fds_open: usize,
    fds_after: usize,
}

/// At most this many handshakes in flight.
const STORM_IN_FLIGHT: usize = 256;

async fn storm(command: &str, count: usize) -> Result<StormRow> {
    let server = Server::start(command).await?;
    let (fds_before, rss_before) = (server.fds()?, server.rss()?);
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    let mut open = Vec::with_capacity(count);
    let mut errors = 0;
    for index in 0..count {
        if pending.len() >= STORM_IN_FLIGHT {
            match pending.join_next().await.expect("a task")? {
                Ok(websocket) => open.push(websocket),
                Err(error) => errors += storm_error(error),
            }
        }
        let url = url.clone();
        pending.spawn(async move {
            let mut config = Config::default();
            if index % 2 == 0 {
                config.deflate(Some(DeflateConfig::default()));
            }
            let (mut websocket, _) = wsflow_tokio::ClientBuilder::new(&url).config(config).connect().await?;
            let hello = Message::text(format!("hello {index}"));
            websocket.send(hello.clone()).await?;
            expect_echo(&mut websocket, &hello).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(websocket)
        });
    }
    while let Some(joined) = pending.join_next().await {
        match joined? {
            Ok(websocket) => open.push(websocket),
            Err(error) => errors += storm_error(error),
        }
    }
    let rate = open.len() as f64 / started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_open, rss_open) = (server.fds()?, server.rss()?);
    println!(
        "storm: {} open in {:.2} s ({rate:.0}/s), {errors} errors, server RSS {:.1} -> {:.1} MiB, {fds_open} fds",
        open.len(),
        started.elapsed().as_secs_f64(),
        rss_before / MIB,
        rss_open / MIB
    );
    // All of them echo once more, at once.
    let mut echoing = tokio::task::JoinSet::new();
    for (index, mut websocket) in open.into_iter().enumerate() {
        echoing.spawn(async move {
            let again = Message::Binary(Bytes::from(format!("again {index}").into_bytes()));
            websocket.send(again.clone()).await?;
            expect_echo(&mut websocket, &again).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(websocket)
        });
    }
    let mut open = Vec::with_capacity(count);
    while let Some(joined) = echoing.join_next().await {
        match joined? {
            Ok(websocket) => open.push(websocket),
            Err(error) => errors += storm_error(error),
        }
    }
    println!("storm: {} echoed again", open.len());
    // They vanish: TCP dropped without a close frame.
    drop(open);
    let mut fds_after = server.fds()?;
    let vanished = Instant::now();
    while fds_after > fds_before && vanished.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_after = server.fds()?;
    }
    println!(
        "storm: server descriptors {fds_after} after {:.1} s (before: {fds_before})",
        vanished.elapsed().as_secs_f64()
    );
    Ok(StormRow {
        rate,
        kib_per_connection: (rss_open - rss_before) / 1024.0 / count as f64,
        errors,
        fds_before,
        fds_open,
        fds_after,
    })
}

fn chat_all(runtime: &tokio::runtime::Runtime, args: &Args, count: usize) {
    let mut rows = Vec::new();
    for (name, command) in &args.servers {
        let mut row = Vec::new();
        for deflate in [false, true] {
            println!(
                "\n== chat: {name}, {count} connections, deflate {}",
                if deflate { "offered" } else { "off" }
            );
            let kib = runtime
                .block_on(chat(command, count, deflate))
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            row.push(kib);
        }
        rows.push((name, row));
    }
    println!("\n| server | KiB per connection, deflate off | KiB per connection, deflate on |");
    println!("|---|---:|---:|");
    for (name, row) in rows {
        println!("| {name} | {:.1} | {:.1} |", row[0], row[1]);
    }
}

/// `--serve VARIANT ADDR`: an echo server on wsflow-tokio with deflate as VARIANT says.
fn serve(variant: &str, addr: &str) {
    let mut deflate = DeflateConfig::default();
    match variant {
        "default" => {}
        "window12" => {
            deflate.client_max_window_bits(12);
        }
        "no-takeover" => {
            deflate.server_no_context_takeover(true);
        }
        other => panic!("unknown server variant {other}"),
    }
    let mut config = Config::default();
    config.deflate(Some(deflate));
    let config = Arc::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let config = config.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let accepted = wsflow_tokio::accept_with(tcp, config, |_| {
                    wsflow_tokio::Decision::Accept(wsflow_tokio::Accept::new())
                })
                .await;
                let Ok(wsflow_tokio::Accepted::WebSocket(mut websocket, _)) = accepted else {
                    return;
                };
                while let Ok(Some(message)) = websocket.recv_message().await {
                    if websocket.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A chat-like JSON line of 150-250 bytes.
fn chat_line(rng: &mut Rng, from: usize, n: usize) -> String {
    const WORDS: &[&str] = &[
        "hello", "anyone", "seen", "the", "new", "release", "build", "is", "green", "again", "lunch", "at", "noon",
        "meeting", "moved", "to", "three", "thanks", "great", "idea", "let's", "ship", "it", "today",
    ];
    let words = 12 + rng.below(20);
    let text: Vec<&str> = (0..words).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    format!(
        r#"{{"type":"message","room":"general","user":{{"id":{from},"name":"user{from}"}},"seq":{n},"ts":{},"text":"{}"}}"#,
        1_733_500_000_000u64 + rng.below(1 << 20) as u64,
        text.join(" ")
    )
}

/// Server RSS growth per connection, KiB, after `count` connections each exchanged 100
/// chat messages each way.
async fn chat(command: &str, count: usize, deflate: bool) -> Result<f64> {
    let server = Server::start(command).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss()?;
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let mut pending = tokio::task::JoinSet::new();
    let mut open = Vec::with_capacity(count);
    for index in 0..count {
        if pending.len() >= STORM_IN_FLIGHT {
            open.push(pending.join_next().await.expect("a task")??);
        }
        let url = url.clone();
        pending.spawn(async move {
            let mut config = Config::default();
            if deflate {
                config.deflate(Some(DeflateConfig::default()));
            }
            let (mut websocket, response) = wsflow_tokio::ClientBuilder::new(&url).config(config).connect().await?;
            let negotiated = response
                .headers()
                .list("sec-websocket-extensions")
                .any(|extension| extension.starts_with("permessage-deflate"));
            if negotiated != deflate {
                return Err(format!("permessage-deflate negotiated: {negotiated}").into());
            }
            let mut rng = Rng::new(index as u64);
            for n in 0..100 {
                let line = Message::text(chat_line(&mut rng, index, n));
                websocket.send(line.clone()).await?;
                expect_echo(&mut websocket, &line).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(websocket)
        });
    }
    while let Some(joined) = pending.join_next().await {
        open.push(joined??);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss()?;
    let kib = (rss_after - rss_before) / 1024.0 / count as f64;
    println!(
        "chat: {} connections, server RSS {:.1} -> {:.1} MiB: {kib:.1} KiB each",
        open.len(),
        rss_before / MIB,
        rss_after / MIB
    );
    Ok(kib)
}

fn storm_error(error: Box<dyn std::error::Error + Send + Sync>) -> usize {
    eprintln!("storm: error: {error}");
    1
}

fn percentile_ms(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

/// One session: connect, a random run of operations, a clean or an abrupt end.
async fn session(url: &str, max_ops: usize, rng: &mut Rng, tally: &Tally) -> Result {
    let mut config = Config::default();
    if rng.below(2) == 0 {
        config.deflate(Some(DeflateConfig::default()));
    }
    let (mut websocket, _) = wsflow_tokio::ClientBuilder::new(url).config(config).connect().await?;
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    for _ in 0..1 + rng.below(max_ops) {
        match rng.below(10) {
            0 => {
                let len = rng.below(126);
                let payload = Bytes::from(rng.bytes(len));
                websocket.ping(payload.clone()).await?;
                loop {
                    match websocket.recv().await? {
                        Some(Event::Pong(pong)) if pong == payload => break,
                        Some(Event::Pong(_) | Event::Ping(_)) => {}
                        other => return Err(format!("expected a pong, got {other:?}").into()),
                    }
                }
            }
            1 => {
                let burst: Vec<Message> = (0..8)
                    .map(|_| Message::Binary(Bytes::from(rng.bytes(16 << 10))))
                    .collect();
                for message in &burst {
                    websocket.send(message.clone()).await?;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                for message in &burst {
                    expect_echo(&mut websocket, message).await?;
                }
                tally.round_trips.fetch_add(8, Ordering::Relaxed);
            }
            _ => {
                // Sizes spread evenly over the powers of two up to 1 MiB, and 0.
                let size = match rng.below(21) {
                    0 => 0,
                    bits => (1 << (bits - 1)) + rng.below(1 << (bits - 1)),
                };
                let message = if rng.below(2) == 0 {
                    Message::text(rng.text(size))
                } else {
                    Message::Binary(Bytes::from(rng.bytes(size)))
                };
                let sent = Instant::now();
                if size >= 16 && rng.below(5) == 0 {
                    send_fragmented(&mut websocket, &message, rng).await?;
                } else {
                    websocket.send(message.clone()).await?;
                }
                expect_echo(&mut websocket, &message).await?;
                tally.latencies.lock().unwrap().push(sent.elapsed());
                tally.round_trips.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if rng.below(4) == 0 {
        drop(websocket); // no close frame: the TCP connection just ends
        return Ok(());
    }
    websocket.close(CloseCode::NORMAL, "soak").await?;
    while websocket.recv().await?.is_some() {}
    let closed = websocket.closed().ok_or("no Closed")?;
    if !closed.is_clean() {
        return Err(format!("close not clean: {closed:?}").into());
    }
    Ok(())
}

type Ws = wsflow_tokio::WebSocket<wsflow_tokio::MaybeTlsStream>;

async fn send_fragmented(websocket: &mut Ws, message: &Message, rng: &mut Rng) -> Result {
    let payload = message.payload();
    let pieces = 2 + rng.below(4);
    // Cut text on character boundaries (ASCII here): any cut is one.
    let mut cuts: VecDeque<usize> = (1..pieces).map(|i| payload.len() * i / pieces).collect();
    let mut start = 0;
    while let Some(cut) = cuts.pop_front() {
        websocket
            .send_fragment(message.kind(), payload.slice(start..cut), false)
            .await?;
        start = cut;
    }
    websocket
        .send_fragment(message.kind(), payload.slice(start..), true)
        .await?;
    Ok(())
}

async fn expect_echo(websocket: &mut Ws, sent: &Message) -> Result {
    match websocket.recv_message().await? {
        Some(echo) if echo == *sent => Ok(()),
        Some(echo) => Err(format!(
            "wrong echo: {:?} of {} bytes for {:?} of {}",
            echo.kind(),
            echo.len(),
            sent.kind(),
            sent.len()
        )
        .into()),
        None => Err(format!("closed instead of an echo: {:?}", websocket.closed()).into()),
    }
}

/// A server process of ours, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start(command: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let command = command.replace("{port}", &port.to_string());
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdout(Stdio::null())
            .spawn()?;
        let server = Self { child, port };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                return Err(format!("{command}: not listening after 20 s").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    fn rss(&self) -> Result<f64> {
        Ok(wsflow_bench::resident_bytes(self.child.id())?)
    }

    fn fds(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))?.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Compressible half the time (a repeated pattern), random otherwise.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        if self.below(2) == 0 {
            let seed = self.next() as u8;
            return (0..len).map(|i| seed.wrapping_add((i % 64) as u8)).collect();
        }
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.next().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    /// ASCII text.
    fn text(&mut self, len: usize) -> String {
        self.bytes(len).into_iter().map(|b| char::from(b' ' + b % 95)).collect()
    }
}
