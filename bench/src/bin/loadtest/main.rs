//! Loopback echo load test: wsflow's three adapters and its axum extractor against
//! tokio-tungstenite, fastwebsockets and tokio-websockets (and axum's own `ws` beside
//! wsflow-axum), each server the plain loop in its own process,
//! and a floor: a hand-written tokio echo of these frames with no library, the least the
//! kernel and tokio cost any server here (its ratios are printed with wsflow's).
//!
//! `cargo run --release --manifest-path bench/Cargo.toml --bin loadtest [-- --secs S] [--only a,b]`
//!
//! The load generator is lean: one thread, frames masked once up front, every echo
//! compared byte for byte with what was sent. Scenarios:
//! - latency: 1 connection, 16 B, one message in flight (round trip p50/p99);
//! - 64x16: 64 connections x 16 in flight, 16 B (msg/s, server CPU per message);
//! - 64KiB: 16 connections x 1 in flight, 64 KiB (MB/s, server CPU per message);
//!
//! measured in rounds that take the servers in turn (all started up front), so that a
//! change in the machine's state during the run (other work, CPU frequency, the 64 KiB
//! echo's two modes) affects every server alike; each figure is the median over the rounds;
//! and, on a fresh server process each:
//! - idle: 1,000 connections after the handshake and one echo (server RSS per connection).
//!
//! Server CPU is utime+stime from /proc/PID/stat over the measured window; RSS is the
//! VmRSS delta from /proc/PID/status.

mod clients;
mod deflate_echo;
mod fanout;
mod rest;
mod servers;
mod wss;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Distinct messages per size; message `n` on a connection carries pattern `n % PATTERNS`.
const PATTERNS: usize = 16;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const IDLE_CONNECTIONS: usize = 1000;
/// Connections opened and closed before the idle scenario's first reading.
const IDLE_WARM_UP: usize = 16;
/// Rounds of the load scenarios (odd: the median is a measured value).
const ROUNDS: u32 = 5;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, name] = args.as_slice() {
        if flag == "--serve" {
            return servers::serve(name);
        }
    }
    if args.get(1).is_some_and(|flag| flag == "--drive") {
        return clients::drive_main(&args[2..]);
    }
    if args.iter().any(|arg| arg == "--clients") {
        return run_clients(&args);
    }
    if args.iter().any(|arg| arg == "--fanout") {
        return run_fanout(&args);
    }
    if args.iter().any(|arg| arg == "--rest") {
        return run_rest(&args);
    }
    if args.iter().any(|arg| arg == "--deflate-echo") {
        return run_deflate_echo(&args);
    }
    if args.iter().any(|arg| arg == "--wss") {
        return run_wss(&args);
    }
    let mut seconds = 3.0;
    let (mut idle_rounds, mut idle_only) = (1, false);
    let mut only: Vec<String> = servers::ALL.iter().map(|name| name.to_string()).collect();
    // The examples too, where built (see `servers::example_binary`).
    for (library, _) in servers::EXAMPLES {
        match servers::example_binary(library) {
            Ok(_) => only.insert(servers::ALL.len() - 1, format!("{}{library}", servers::EXAMPLE_PREFIX)),
            Err(error) => eprintln!("loadtest: leaving out {}{library}: {error}", servers::EXAMPLE_PREFIX),
        }
    }
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--only" => only = rest.next().expect("--only a,b").split(',').map(String::from).collect(),
            "--idle-rounds" => {
                idle_rounds = rest.next().and_then(|s| s.parse().ok()).expect("--idle-rounds N");
            }
            "--idle-only" => idle_only = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let window = Duration::from_secs_f64(seconds);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loads = if idle_only {
        vec![Row::default(); only.len()]
    } else {
        runtime
            .block_on(measure_load(&only, window))
            .unwrap_or_else(|error| panic!("load: {error}"))
    };
    // The idle scenario in rounds too (a fresh server process each time), servers in turn.
    let mut idle: Vec<Vec<(f64, f64)>> = vec![Vec::new(); only.len()];
    for round in 1..=idle_rounds {
        for (name, kib) in only.iter().zip(&mut idle) {
            eprintln!("loadtest: idle, {name} (round {round} of {idle_rounds})");
            kib.push(
                runtime
                    .block_on(measure_idle(name))
                    .unwrap_or_else(|error| panic!("{name}: {error}")),
            );
        }
    }
    let mut rows = Vec::new();
    for ((name, load), mut kib) in only.iter().zip(loads).zip(idle) {
        kib.sort_by(|a, b| a.0.total_cmp(&b.0));
        let all: Vec<String> = kib.iter().map(|kib| format!("{:.2}", kib.0)).collect();
        let mut total: Vec<f64> = kib.iter().map(|kib| kib.1).collect();
        total.sort_by(f64::total_cmp);
        println!(
            "idle KiB/conn, {name}: anonymous median {:.2}, all {}; VmRSS median {:.2}",
            kib[kib.len() / 2].0,
            all.join(" "),
            total[total.len() / 2]
        );
        let idle_kib = kib[kib.len() / 2].0;
        rows.push((name.clone(), Row { idle_kib, ..load }));
    }
    if !idle_only {
        print_tables(&rows);
    }
}

/// `--fanout [--members N[,N..]] [--secs S] [--only a,b]`: the fan-out scenario on fresh
/// server processes, in rounds that take the servers in turn (medians).
fn run_fanout(args: &[String]) {
    let mut members = vec![1000];
    let mut seconds = 3.0;
    let peers = fanout::peers_installed();
    if !peers {
        eprintln!("loadtest: Node `ws` and Python `websockets` left out: run tests/peers/setup.sh to include them");
    }
    let mut only: Vec<String> = fanout::SERVERS
        .iter()
        .filter(|name| peers || !fanout::is_peer(name))
        .map(|name| name.to_string())
        .collect();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--fanout" => {}
            "--members" => {
                members = rest
                    .next()
                    .expect("--members N[,N..]")
                    .split(',')
                    .map(|n| n.parse().expect("--members N"))
                    .collect()
            }
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--only" => only = only_with_prefix(rest.next().expect("--only a,b"), "fanout:"),
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for count in members {
        let medians = medians_of_three_rounds(
            &only,
            &format!("fan-out, {count} members,"),
            |name| runtime.block_on(fanout::measure(name, count, Duration::from_secs_f64(seconds))),
            |row| row.cpu_us_per_delivery,
        );
        fanout::print(&medians, count);
    }
    // The RSS target's reference, in the same run: wsflow-tokio's echo server, an idle
    // connection (the idle scenario's measurement), median of three fresh processes.
    let mut idle: Vec<f64> = (0..3)
        .map(|_| {
            runtime
                .block_on(measure_idle("wsflow-tokio"))
                .unwrap_or_else(|error| panic!("idle: {error}"))
                .0
        })
        .collect();
    idle.sort_by(f64::total_cmp);
    println!();
    println!(
        "wsflow-tokio echo server, idle connection (the RSS target, anonymous RSS), same run: {:.2} KiB (of {:.2}, {:.2}, {:.2})",
        idle[1], idle[0], idle[1], idle[2]
    );
}

/// `--only a,b` for a scenario whose server names carry `prefix` (given with or without it).
fn only_with_prefix(list: &str, prefix: &str) -> Vec<String> {
    list.split(',')
        .map(|name| format!("{prefix}{}", name.trim_start_matches(prefix)))
        .collect()
}

/// Three rounds that take the servers in turn, each `measure`d on a fresh process; the
/// median row of each server by `key`.
fn medians_of_three_rounds<T: Copy>(
    only: &[String],
    label: &str,
    mut measure: impl FnMut(&str) -> Result<T>,
    key: impl Fn(&T) -> f64,
) -> Vec<(String, T)> {
    let mut rounds: Vec<Vec<T>> = vec![Vec::new(); only.len()];
    for round in 1..=3 {
        for (name, rows) in only.iter().zip(&mut rounds) {
            eprintln!("loadtest: {label} round {round} of 3, {name}");
            rows.push(measure(name).unwrap_or_else(|error| panic!("{name}: {error}")));
        }
    }
    only.iter()
        .zip(rounds)
        .map(|(name, mut rows)| {
            rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
            (name.clone(), rows[rows.len() / 2])
        })
        .collect()
}

/// `--deflate-echo [--secs S] [--only a,b]`: echo with permessage-deflate against Node `ws`
/// and Python `websockets` (see deflate_echo.rs), in rounds that take the servers in turn
/// (medians of three).
fn run_deflate_echo(args: &[String]) {
    let mut seconds = 3.0;
    let mut only: Vec<String> = deflate_echo::SERVERS.iter().map(|name| name.to_string()).collect();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--deflate-echo" => {}
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--only" => only = only_with_prefix(rest.next().expect("--only a,b"), "deflate:"),
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let medians = medians_of_three_rounds(
        &only,
        "deflate echo",
        |name| runtime.block_on(deflate_echo::measure(name, Duration::from_secs_f64(seconds))),
        |row| row.0,
    );
    deflate_echo::print(&medians);
}

/// `--wss [--secs S]`: the load scenarios over TLS (see wss.rs) for wsflow-tokio and
/// tokio-tungstenite, each behind tokio-rustls, plus the server's CPU per TLS+WebSocket
/// handshake.
fn run_wss(args: &[String]) {
    let mut seconds = 3.0;
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--wss" => {}
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            other => panic!("unknown argument {other}"),
        }
    }
    let only: Vec<String> = ["wss:wsflow-tokio", "wss:tokio-tungstenite"].map(String::from).to_vec();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loads = runtime
        .block_on(measure_load(&only, Duration::from_secs_f64(seconds)))
        .unwrap_or_else(|error| panic!("wss load: {error}"));
    let mut rows = Vec::new();
    let mut handshakes = Vec::new();
    for (name, load) in only.iter().zip(loads) {
        let (idle_kib, _) = runtime
            .block_on(measure_idle(name))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        rows.push((name.clone(), Row { idle_kib, ..load }));
        let handshake = runtime
            .block_on(handshake_cpu_us(name, 1000))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        handshakes.push((name.clone(), handshake));
    }
    print_tables(&rows);
    println!();
    println!("| server | server CPU µs per TLS + WebSocket handshake |");
    println!("|---|---:|");
    for (name, us) in handshakes {
        println!("| {name} | {us:.0} |");
    }
}

/// Server CPU per connection for `count` connections (TCP, TLS where the server has it,
/// upgrade, close), 50 at a time, on a fresh server process.
async fn handshake_cpu_us(name: &str, count: usize) -> Result<f64> {
    let server = Arc::new(Server::start(name)?);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = server.cpu()?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        if tasks.len() >= 50 {
            tasks.join_next().await.expect("a task")??;
        }
        let server = server.clone();
        tasks.spawn(async move {
            let mut stream = server.connect().await?;
            close(&mut stream).await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cpu = server.cpu()? - before;
    Ok((cpu.user + cpu.system).as_secs_f64() * 1e6 / count as f64)
}

/// `--clients [--secs S] [--only a,b]`: each client library against the floor server (see
/// clients.rs), in three rounds that take the clients in turn (medians).
fn run_clients(args: &[String]) {
    let mut seconds = 2.0;
    let mut only: Vec<String> = clients::CLIENTS.iter().map(|name| name.to_string()).collect();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--clients" => {}
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--only" => only = rest.next().expect("--only a,b").split(',').map(String::from).collect(),
            other => panic!("unknown argument {other}"),
        }
    }
    let server = Server::start(servers::FLOOR).unwrap_or_else(|error| panic!("floor: {error}"));
    let mut rounds: Vec<Vec<(clients::Drive, clients::Drive)>> = vec![Vec::new(); only.len()];
    for round in 1..=3 {
        for (name, drives) in only.iter().zip(&mut rounds) {
            eprintln!("loadtest: clients round {round} of 3, {name}");
            let small = clients::drive(name, server.port, 64, 16, 16, seconds);
            let large = clients::drive(name, server.port, 16, 1, 64 << 10, seconds);
            drives.push((
                small.unwrap_or_else(|error| panic!("{error}")),
                large.unwrap_or_else(|error| panic!("{error}")),
            ));
        }
    }
    let median = |drives: &mut Vec<clients::Drive>| {
        drives.sort_by(|a, b| a.us_per_message().total_cmp(&b.us_per_message()));
        drives[drives.len() / 2]
    };
    let rows: Vec<(String, clients::Drive, clients::Drive)> = only
        .iter()
        .zip(rounds)
        .map(|(name, drives)| {
            let (mut small, mut large): (Vec<_>, Vec<_>) = drives.into_iter().unzip();
            (name.clone(), median(&mut small), median(&mut large))
        })
        .collect();
    clients::print(&rows, seconds);
}

/// `--rest [N] [--secs S] [--only a,b]`: N connections at rest (default 10,000; see
/// rest.rs), each server on a fresh process.
fn run_rest(args: &[String]) {
    let mut connections = 10_000;
    let mut seconds = 10.0;
    let mut only: Vec<String> = ["wsflow-tokio", "wsflow-smol", "wsflow-axum", "floor"]
        .iter()
        .chain(servers::ANCHORS.iter())
        .map(|name| name.to_string())
        .collect();
    let mut rest = args[1..].iter().peekable();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--rest" => {
                if let Some(count) = rest.peek().and_then(|next| next.parse().ok()) {
                    connections = count;
                    rest.next();
                }
            }
            "--secs" => seconds = rest.next().and_then(|s| s.parse().ok()).expect("--secs SECONDS"),
            "--only" => only = rest.next().expect("--only a,b").split(',').map(String::from).collect(),
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for name in only {
        eprintln!("loadtest: rest, {name}, {connections} connections");
        let row = runtime
            .block_on(rest::measure(&name, connections, Duration::from_secs_f64(seconds)))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        rows.push((name, row));
    }
    rest::print(&rows, connections);
}

/// One server's results.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    p50_us: f64,
    p99_us: f64,
    small_msgs_per_s: f64,
    small_cpu_us: f64,
    /// The part of `small_cpu_us` spent in the server's own code (the rest is the kernel's).
    small_user_us: f64,
    large_mb_per_s: f64,
    large_cpu_us: f64,
    large_user_us: f64,
    idle_kib: f64,
}

/// The load scenarios in rounds: each round runs every scenario on every server in turn,
/// for `window / ROUNDS` each. Returns each server's medians over the rounds.
async fn measure_load(names: &[String], window: Duration) -> Result<Vec<Row>> {
    let servers = names
        .iter()
        .map(|name| Server::start(name))
        .collect::<Result<Vec<_>>>()?;
    let window = window / ROUNDS;
    let mut rounds = vec![Vec::new(); servers.len()];
    for round in 1..=ROUNDS {
        eprintln!("loadtest: round {round} of {ROUNDS}");
        for (server, rows) in servers.iter().zip(&mut rounds) {
            let mut row = Row::default();
            let load = run_load(server, 1, 1, 16, window, true).await?;
            (row.p50_us, row.p99_us) = (percentile(&load.latencies, 0.50), percentile(&load.latencies, 0.99));
            let load = run_load(server, 64, 16, 16, window, false).await?;
            row.small_msgs_per_s = load.messages as f64 / load.elapsed.as_secs_f64();
            (row.small_cpu_us, row.small_user_us) = load.cpu_per_message_us();
            let load = run_load(server, 16, 1, 64 << 10, window, false).await?;
            row.large_mb_per_s = (load.messages * (64 << 10)) as f64 / load.elapsed.as_secs_f64() / 1e6;
            (row.large_cpu_us, row.large_user_us) = load.cpu_per_message_us();
            rows.push(row);
        }
    }
    Ok(rounds.into_iter().map(|rows| median_row(&rows)).collect())
}

/// Each figure's median over `rows`.
fn median_row(rows: &[Row]) -> Row {
    let median = |pick: fn(&Row) -> f64| {
        let mut values: Vec<f64> = rows.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Row {
        p50_us: median(|r| r.p50_us),
        p99_us: median(|r| r.p99_us),
        small_msgs_per_s: median(|r| r.small_msgs_per_s),
        small_cpu_us: median(|r| r.small_cpu_us),
        small_user_us: median(|r| r.small_user_us),
        large_mb_per_s: median(|r| r.large_mb_per_s),
        large_cpu_us: median(|r| r.large_cpu_us),
        large_user_us: median(|r| r.large_user_us),
        idle_kib: 0.0,
    }
}

/// Server memory per idle connection, in KiB, on a fresh server process: anonymous
/// resident memory, and VmRSS (see `idle_rss_per_connection`).
async fn measure_idle(name: &str) -> Result<(f64, f64)> {
    let server = Server::start(name)?;
    let (anonymous, total) = idle_rss_per_connection(&server).await?;
    Ok((anonymous / 1024.0, total / 1024.0))
}

/// An echo server in a child process of ours, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// A `wss:` server: connections go through TLS.
    tls: bool,
}

impl Server {
    fn start(name: &str) -> Result<Self> {
        let tls = name.starts_with("wss:");
        if tls {
            wss::configs(); // the certificate, before the server process that reads it
        }
        let binary = match (
            name.strip_prefix(servers::EXAMPLE_PREFIX),
            name.strip_prefix(servers::BINARY_PREFIX),
        ) {
            (Some(example), _) => Some(servers::example_binary(example)?),
            (_, Some(path)) => Some(path.into()),
            _ => None,
        };
        let mut command = match binary {
            // A built example binary, as a user runs it, on a port of the kernel's choosing.
            Some(binary) => {
                let mut command = Command::new(binary);
                command.arg("127.0.0.1:0");
                command
            }
            // Node `ws` and Python `websockets`: scripts in bench/peers/ and tests/peers/.
            None if fanout::is_peer(name) => fanout::peer_command(name)?,
            None => match deflate_echo::peer_command(name) {
                Some(command) => command,
                None => {
                    let mut command = Command::new(std::env::current_exe()?);
                    command.args(["--serve", name]);
                    command
                }
            },
        };
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        // `PORT` from `--serve`; an example prints `echo-server: listening on ADDR:PORT`.
        let port = match line.trim().rsplit_once(':') {
            Some((_, port)) => port.parse(),
            None => line.trim().parse(),
        };
        let port = port.map_err(|_| format!("{name}: expected a port, got {line:?}"))?;
        Ok(Self { child, port, tls })
    }

    /// User and system CPU time of the whole process so far.
    fn cpu(&self) -> Result<Cpu> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which may hold spaces): state is field 3,
        // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks = |field: &str| field.parse::<u64>().map(|ticks| Duration::from_millis(ticks * 10));
        Ok(Cpu {
            user: ticks(fields[11])?,
            system: ticks(fields[12])?,
        })
    }

    /// Resident memory in bytes.
    fn rss(&self) -> Result<f64> {
        Ok(wsflow_bench::resident_bytes(self.child.id())?)
    }

    /// Anonymous resident memory (heap and stacks) in bytes.
    fn anonymous_rss(&self) -> Result<f64> {
        Ok(wsflow_bench::anonymous_resident_bytes(self.child.id())?)
    }

    /// Connects and upgrades, over TLS to the `wss:` servers.
    async fn connect(&self) -> Result<Stream> {
        if !self.tls {
            return Ok(Stream::Plain(self.connect_offering(false).await?));
        }
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(wss::configs().1.clone());
        let mut tls = connector.connect("localhost".try_into()?, tcp).await?;
        upgrade(&mut tls, false).await?;
        Ok(Stream::Rustls(Box::new(tls)))
    }

    /// Connects and upgrades, offering permessage-deflate when `deflate`.
    async fn connect_offering(&self, deflate: bool) -> Result<TcpStream> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        upgrade(&mut tcp, deflate).await?;
        Ok(tcp)
    }
}

/// Sends the upgrade request (offering permessage-deflate when `deflate`) and reads the
/// 101 response.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(tcp: &mut S, deflate: bool) -> Result {
    {
        let offer = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        // The server says nothing after its response until it gets a frame, so whatever
        // arrives before the blank line is the response alone.
        let mut response = Vec::with_capacity(512);
        while !response.ends_with(b"\r\n\r\n") {
            if response.len() > 16 << 10 || tcp.read_buf(&mut response).await? == 0 {
                return Err("closed during the handshake, or a head without an end".into());
            }
        }
        if !response.starts_with(b"HTTP/1.1 101") {
            return Err(format!("handshake: {}", String::from_utf8_lossy(&response)).into());
        }
        Ok(())
    }
}

/// A load generator's connection: TCP, or TLS to the `wss:` servers (wsflow-tokio's
/// stream type, which the anchors' clients need not know about: it is only bytes here).
pub(crate) type Stream = wsflow_tokio::MaybeTlsStream;

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frames a connection sends (masked once, here) and the echoes it expects.
struct Frames {
    masked: Vec<Vec<u8>>,
    echoes: Vec<Vec<u8>>,
}

impl Frames {
    fn new(size: usize) -> Self {
        let (mut masked, mut echoes) = (Vec::new(), Vec::new());
        for pattern in 0..PATTERNS {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 + pattern * 13) as u8).collect();
            let mut head = vec![0x82];
            match size {
                0..=125 => head.push(size as u8),
                126..=0xFFFF => head.extend([126, (size >> 8) as u8, size as u8]),
                _ => {
                    head.push(127);
                    head.extend((size as u64).to_be_bytes());
                }
            }
            let mut echo = head.clone();
            echo.extend_from_slice(&payload);
            echoes.push(echo);
            head[1] |= 0x80;
            head.extend(MASK);
            head.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ MASK[i % 4]));
            masked.push(head);
        }
        Self { masked, echoes }
    }
}

/// CPU time of a process: in its own code, and in the kernel on its behalf.
#[derive(Clone, Copy, Debug)]
struct Cpu {
    user: Duration,
    system: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// What a load run measured.
struct Load {
    messages: u64,
    elapsed: Duration,
    cpu: Cpu,
    latencies: Vec<Duration>,
}

impl Load {
    /// Server CPU per message in µs: in all, and in user space.
    fn cpu_per_message_us(&self) -> (f64, f64) {
        let per_message = |time: Duration| time.as_secs_f64() * 1e6 / self.messages as f64;
        (per_message(self.cpu.user + self.cpu.system), per_message(self.cpu.user))
    }
}

/// `connections` x `in_flight` messages of `size` bytes echoed for `window` (after a
/// warm-up of a quarter of it), counting the messages and the server's CPU time.
async fn run_load(
    server: &Server,
    connections: usize,
    in_flight: usize,
    size: usize,
    window: Duration,
    record_latency: bool,
) -> Result<Load> {
    let frames = Arc::new(Frames::new(size));
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let tcp = server.connect().await?;
        let (frames, stop, echoed) = (frames.clone(), stop.clone(), echoed.clone());
        tasks.push(tokio::spawn(pump(tcp, frames, in_flight, stop, echoed, record_latency)));
    }
    tokio::time::sleep(window / 4).await;
    let (start, messages_before, cpu_before) = (Instant::now(), echoed.load(Ordering::Relaxed), server.cpu()?);
    tokio::time::sleep(window).await;
    let (elapsed, messages, cpu) = (
        start.elapsed(),
        echoed.load(Ordering::Relaxed) - messages_before,
        server.cpu()? - cpu_before,
    );
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(tokio::time::timeout(Duration::from_secs(10), task).await???);
    }
    latencies.sort();
    Ok(Load {
        messages,
        elapsed,
        cpu,
        latencies,
    })
}

/// One connection of the load: keeps `in_flight` messages outstanding, sending as many new
/// ones as echoes came back in each read (in one write), and verifies every echo. Once
/// `stop` is set it lets the outstanding ones come back and closes.
async fn pump(
    mut tcp: Stream,
    frames: Arc<Frames>,
    in_flight: usize,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    record_latency: bool,
) -> Result<Vec<Duration>> {
    let (mut sent, mut received) = (0usize, 0usize);
    let mut sent_at = VecDeque::new();
    let mut latencies = Vec::new();
    let mut batch = Vec::new();
    let mut rx: Vec<u8> = Vec::with_capacity(256 << 10);
    let mut rx_start = 0;
    let mut to_send = in_flight;
    loop {
        if !stop.load(Ordering::Relaxed) && to_send > 0 {
            batch.clear();
            for _ in 0..to_send {
                batch.extend_from_slice(&frames.masked[sent % PATTERNS]);
                sent += 1;
                if record_latency {
                    sent_at.push_back(Instant::now());
                }
            }
            tcp.write_all(&batch).await?;
        }
        if received == sent {
            break;
        }
        if rx.capacity() - rx.len() < 64 << 10 {
            rx.drain(..rx_start);
            rx_start = 0;
            rx.reserve(64 << 10);
        }
        if tcp.read_buf(&mut rx).await? == 0 {
            return Err("server closed the connection".into());
        }
        to_send = 0;
        loop {
            let expected = &frames.echoes[received % PATTERNS];
            let available = &rx[rx_start..];
            if available.len() < expected.len() {
                // Not all here yet; a wrong header fails at once rather than at the deadline.
                if available.len() >= 2 && available[..2] != expected[..2] {
                    return Err(format!("unexpected frame header {:02x?}", &available[..2]).into());
                }
                break;
            }
            if available[..expected.len()] != expected[..] {
                return Err(format!("echo {received} differs from what was sent").into());
            }
            rx_start += expected.len();
            received += 1;
            to_send += 1;
            if let Some(at) = sent_at.pop_front() {
                latencies.push(at.elapsed());
            }
        }
        echoed.fetch_add(to_send as u64, Ordering::Relaxed);
    }
    close(&mut tcp).await;
    Ok(latencies)
}

/// Sends a masked close frame (1000) and waits briefly for the server to close.
async fn close(tcp: &mut Stream) {
    let code = [0x03 ^ MASK[0], 0xE8 ^ MASK[1]];
    let frame = [0x88, 0x82, MASK[0], MASK[1], MASK[2], MASK[3], code[0], code[1]];
    if tcp.write_all(&frame).await.is_ok() {
        let mut sink = [0u8; 1024];
        let drain = async { while matches!(tcp.read(&mut sink).await, Ok(1..)) {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

/// Opens `IDLE_CONNECTIONS` connections, each echoing one message, and returns the
/// server's anonymous resident memory growth per connection (heap and stacks), and its
/// VmRSS growth (which also counts the pages of the binary's code faulted in as the
/// connections first run it: 0.1-1.2 KiB per connection over 1,000 of them, the more the
/// bigger the binary, so not a connection's cost). Connections opened and closed before
/// the first reading (`IDLE_WARM_UP`) leave out what a server sets up once (the threads'
/// malloc arenas, a thread-local buffer's first page).
async fn idle_rss_per_connection(server: &Server) -> Result<(f64, f64)> {
    let frames = Frames::new(16);
    let mut open = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_WARM_UP {
        open.push(echo_once(server, &frames).await?);
    }
    for mut tcp in open.drain(..) {
        close(&mut tcp).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = (server.anonymous_rss()?, server.rss()?);
    for _ in 0..IDLE_CONNECTIONS {
        open.push(echo_once(server, &frames).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = (server.anonymous_rss()?, server.rss()?);
    let per_connection = |grown: f64| grown / IDLE_CONNECTIONS as f64;
    Ok((per_connection(after.0 - before.0), per_connection(after.1 - before.1)))
}

/// A new connection that has echoed one 16-byte message.
async fn echo_once(server: &Server, frames: &Frames) -> Result<Stream> {
    let mut tcp = server.connect().await?;
    tcp.write_all(&frames.masked[0]).await?;
    let mut echo = vec![0u8; frames.echoes[0].len()];
    tcp.read_exact(&mut echo).await?;
    if echo != frames.echoes[0] {
        return Err("idle echo differs".into());
    }
    Ok(tcp)
}

fn percentile(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * quantile).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// An anchor, over TCP or (`wss:`) TLS.
fn is_anchor(name: &str) -> bool {
    servers::ANCHORS.contains(&name.trim_start_matches("wss:"))
}

fn print_tables(rows: &[(String, Row)]) {
    println!();
    println!(
        "| server | p50 µs | p99 µs | 64x16 msg/s | 64x16 CPU µs/msg (user) | 64KiB MB/s | 64KiB CPU µs/msg (user) | idle KiB/conn |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.0} | {:.2} ({:.2}) | {:.0} | {:.1} ({:.1}) | {:.1} |",
            r.p50_us,
            r.p99_us,
            r.small_msgs_per_s,
            r.small_cpu_us,
            r.small_user_us,
            r.large_mb_per_s,
            r.large_cpu_us,
            r.large_user_us,
            r.idle_kib
        );
    }
    let anchors: Vec<&Row> = rows
        .iter()
        .filter(|(name, _)| is_anchor(name))
        .map(|(_, row)| row)
        .collect();
    if anchors.is_empty() {
        return;
    }
    // The best anchor per column (lowest, or highest for rates), and each wsflow adapter's
    // ratio to it (< 1 is better for costs, > 1 is better for rates).
    let best = |pick: fn(&Row) -> f64, higher_is_better: bool| {
        let values = anchors.iter().map(|row| pick(row));
        if higher_is_better {
            values.fold(f64::MIN, f64::max)
        } else {
            values.fold(f64::MAX, f64::min)
        }
    };
    type Column = (&'static str, fn(&Row) -> f64, bool, Option<f64>);
    let columns: [Column; 7] = [
        ("p50", |r| r.p50_us, false, None),
        ("p99", |r| r.p99_us, false, None),
        ("64x16 msg/s", |r| r.small_msgs_per_s, true, None),
        ("64x16 CPU", |r| r.small_cpu_us, false, Some(0.5)),
        ("64KiB MB/s", |r| r.large_mb_per_s, true, None),
        ("64KiB CPU", |r| r.large_cpu_us, false, Some(14.0)),
        ("idle", |r| r.idle_kib, false, Some(2.5)),
    ];
    println!();
    println!("Ratio to the best anchor in this run (costs: lower is better; rates: higher is better), and the issue's targets:");
    println!();
    print!("| server |");
    columns.iter().for_each(|(title, ..)| print!(" {title} |"));
    println!();
    println!("|---|{}", "---:|".repeat(columns.len()));
    print!("| best anchor |");
    columns
        .iter()
        .for_each(|(_, pick, higher, _)| print!(" {:.2} |", best(*pick, *higher)));
    println!();
    for (name, row) in rows.iter().filter(|(name, _)| !is_anchor(name)) {
        print!("| {name} |");
        columns
            .iter()
            .for_each(|(_, pick, higher, _)| print!(" {:.2}x |", pick(row) / best(*pick, *higher)));
        println!();
    }
    print!("| target |");
    columns.iter().for_each(|(title, _, _, target)| match (title, target) {
        (_, Some(target)) => print!(" <= {target} |"),
        (&"p50", None) => print!(" <= 1.00x |"),
        _ => print!(" |"),
    });
    println!();
}
