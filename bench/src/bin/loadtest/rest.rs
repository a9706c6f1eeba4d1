//! `loadtest --rest N`: a chat room at rest. N connections (10,000 by default) opened with
//! 100 handshakes in flight, then each sends one 16-byte message a second (spread evenly
//! over the second) and checks its echo. Per server, on a fresh process: connect+upgrade
//! rate, server RSS per connection once all are open, server CPU per second over the
//! measured window (after one second of warm-up), round-trip p50/p99, errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{percentile, Frames, Result, Server, Stream};

/// Handshakes in flight while connecting: under the servers' listen backlog (std's 128),
/// so that no SYN is dropped and retried a second later.
const IN_FLIGHT: usize = 100;

/// One server's figures.
#[derive(Clone, Debug)]
pub struct RestRow {
    pub connect_per_s: f64,
    pub kib_per_connection: f64,
    pub cpu_ms_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub messages: u64,
    pub errors: u64,
}

pub async fn measure(name: &str, connections: usize, window: Duration) -> Result<RestRow> {
    let server = Arc::new(Server::start(name)?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = server.rss()?;
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    let mut open = Vec::with_capacity(connections);
    let mut errors = 0;
    for _ in 0..connections {
        if pending.len() >= IN_FLIGHT {
            match pending.join_next().await.expect("a task")? {
                Ok(tcp) => open.push(tcp),
                Err(_) => errors += 1,
            }
        }
        let server = server.clone();
        pending.spawn(async move { server.connect().await });
    }
    while let Some(joined) = pending.join_next().await {
        match joined? {
            Ok(tcp) => open.push(tcp),
            Err(_) => errors += 1,
        }
    }
    let connect_per_s = open.len() as f64 / started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kib_per_connection = (server.rss()? - rss_before) / 1024.0 / open.len().max(1) as f64;

    let frames = Arc::new(Frames::new(16));
    let stop = Arc::new(AtomicBool::new(false));
    let messages = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let count = open.len();
    let mut tasks = Vec::with_capacity(count);
    let epoch = tokio::time::Instant::now();
    for (index, tcp) in open.into_iter().enumerate() {
        let offset = Duration::from_secs(1) * index as u32 / count as u32;
        let (frames, stop, messages, failures, latencies) = (
            frames.clone(),
            stop.clone(),
            messages.clone(),
            failures.clone(),
            latencies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(_error) = chatter(tcp, epoch + offset, &frames, &stop, &messages, &latencies).await {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    latencies.lock().unwrap().clear();
    let (cpu_before, window_start) = (server.cpu()?, Instant::now());
    tokio::time::sleep(window).await;
    let cpu = server.cpu()? - cpu_before;
    let elapsed = window_start.elapsed();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    latencies.sort();
    Ok(RestRow {
        connect_per_s,
        kib_per_connection,
        cpu_ms_per_s: (cpu.user + cpu.system).as_secs_f64() * 1e3 / elapsed.as_secs_f64(),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        messages: messages.load(Ordering::Relaxed),
        errors: errors + failures.load(Ordering::Relaxed),
    })
}

/// One message a second from `first` on, each echo checked, until `stop`.
async fn chatter(
    mut tcp: Stream,
    first: tokio::time::Instant,
    frames: &Frames,
    stop: &AtomicBool,
    messages: &AtomicU64,
    latencies: &Mutex<Vec<Duration>>,
) -> Result {
    let mut ticks = tokio::time::interval_at(first, Duration::from_secs(1));
    let mut echo = vec![0u8; frames.echoes[0].len()];
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let at = Instant::now();
        tcp.write_all(&frames.masked[sent % frames.masked.len()]).await?;
        tcp.read_exact(&mut echo).await?;
        if echo != frames.echoes[sent % frames.echoes.len()] {
            return Err("echo differs".into());
        }
        latencies.lock().unwrap().push(at.elapsed());
        messages.fetch_add(1, Ordering::Relaxed);
        sent += 1;
    }
    Ok(())
}

pub fn print(rows: &[(String, RestRow)], connections: usize) {
    let anchors: Vec<&RestRow> = rows
        .iter()
        .filter(|(name, _)| crate::servers::ANCHORS.contains(&name.as_str()))
        .map(|(_, row)| row)
        .collect();
    let best = |pick: fn(&RestRow) -> f64| anchors.iter().map(|row| pick(row)).fold(f64::INFINITY, f64::min);
    let (best_kib, best_cpu) = (best(|r| r.kib_per_connection), best(|r| r.cpu_ms_per_s));
    println!();
    println!("{connections} connections at rest, one 16-byte message a second each (ratios: against the best anchor)");
    println!("| server | connect+upgrade /s | RSS KiB/conn | CPU ms per s | p50 µs | p99 µs | messages | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, row) in rows {
        println!(
            "| {name} | {:.0} | {:.1} ({:.2}x) | {:.1} ({:.2}x) | {:.0} | {:.0} | {} | {} |",
            row.connect_per_s,
            row.kib_per_connection,
            row.kib_per_connection / best_kib,
            row.cpu_ms_per_s,
            row.cpu_ms_per_s / best_cpu,
            row.p50_us,
            row.p99_us,
            row.messages,
            row.errors
        );
    }
}
