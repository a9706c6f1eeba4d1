//! Runs the Autobahn|Testsuite fuzzing server's cases against this adapter.
//!
//! `cargo run -p wsflow-smol --example autobahn-client -- [BASE_URL] [AGENT]`
//! (default ws://127.0.0.1:9001 wsflow-smol)

use std::sync::Arc;

use wsflow_smol::wsflow::DeflateConfig;
use wsflow_smol::{ClientBuilder, CloseCode, Config, Error, Message};

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsflow-smol".into());
    smol::block_on(async {
        let (mut socket, _) = wsflow_smol::connect(&format!("{base}/getCaseCount")).await?;
        let count = match socket.recv_message().await? {
            Some(Message::Text(text)) => text.as_str().trim().parse::<u32>().unwrap_or(0),
            other => return Err(std::io::Error::other(format!("expected the case count, got {other:?}")).into()),
        };
        close(&mut socket).await?;
        eprintln!("{count} cases");
        // Offer permessage-deflate, as browsers do.
        let mut config = Config::default();
        config.deflate(Some(DeflateConfig::default()));
        let config = Arc::new(config);
        for case in 1..=count {
            eprintln!("case {case}/{count}");
            if let Err(error) = run_case(&format!("{base}/runCase?case={case}&agent={agent}"), &config).await {
                eprintln!("case {case}: {error}");
            }
        }
        let (mut socket, _) = wsflow_smol::connect(&format!("{base}/updateReports?agent={agent}")).await?;
        close(&mut socket).await?;
        eprintln!("reports updated");
        Ok(())
    })
}

/// Echoes every message until the connection closes.
async fn run_case(url: &str, config: &Arc<Config>) -> Result<(), Error> {
    let (mut socket, _) = ClientBuilder::new(url).config(config.clone()).connect().await?;
    while let Some(message) = socket.recv_message().await? {
        socket.send(message).await?;
    }
    Ok(())
}

/// Closes with 1000 (unless the server already closed) and waits for the end.
async fn close(socket: &mut wsflow_smol::WebSocket<wsflow_smol::MaybeTlsStream>) -> Result<(), Error> {
    match socket.close(CloseCode::NORMAL, "").await {
        Ok(()) | Err(Error::Send(_)) => {}
        Err(error) => return Err(error),
    }
    while socket.recv().await?.is_some() {}
    Ok(())
}
