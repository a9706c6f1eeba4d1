//! Runs the Autobahn client test suite: echoes every message of every case.
//!
//! `cargo run -p wsflow-tokio --example autobahn-client -- [BASE_URL] [AGENT]`
//! (default `ws://127.0.0.1:9001 wsflow-tokio`)

use std::sync::Arc;

use wsflow_tokio::wsflow::DeflateConfig;
use wsflow_tokio::{ClientBuilder, Config, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsflow-tokio".into());

    let (mut websocket, _) = wsflow_tokio::connect(&format!("{base}/getCaseCount")).await?;
    let count = websocket.recv_message().await?.map(|message| message.into_payload());
    let count: u32 = count
        .and_then(|payload| std::str::from_utf8(&payload).ok()?.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("getCaseCount did not answer with a number"))?;
    while websocket.recv().await?.is_some() {}
    println!("autobahn-client: {count} cases");

    // Offer permessage-deflate, as browsers do.
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);
    for case in 1..=count {
        if let Err(error) = echo_until_closed(&format!("{base}/runCase?case={case}&agent={agent}"), &config).await {
            eprintln!("autobahn-client: case {case}: {error}");
        }
    }

    let (mut websocket, _) = wsflow_tokio::connect(&format!("{base}/updateReports?agent={agent}")).await?;
    websocket.close(wsflow_tokio::CloseCode::NORMAL, "").await?;
    while websocket.recv().await?.is_some() {}
    println!("autobahn-client: reports updated");
    Ok(())
}

async fn echo_until_closed(url: &str, config: &Arc<Config>) -> Result<(), Error> {
    let (mut websocket, _) = ClientBuilder::new(url).config(config.clone()).connect().await?;
    while let Some(message) = websocket.recv_message().await? {
        websocket.send(message).await?;
    }
    Ok(())
}
