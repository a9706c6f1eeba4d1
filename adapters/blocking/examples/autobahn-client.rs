//! Runs the Autobahn fuzzing server's test cases: `autobahn-client BASE_URL AGENT`
//! (default `ws://127.0.0.1:9001 wsflow-blocking`).

use std::sync::Arc;

use wsflow_blocking::wsflow::DeflateConfig;
use wsflow_blocking::{connect, ClientBuilder, CloseCode, Config, Error};

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = args.next().unwrap_or_else(|| "wsflow-blocking".to_owned());

    let (mut ws, _) = connect(&format!("{base}/getCaseCount"))?;
    let count: usize = match ws.recv_message()? {
        Some(message) => String::from_utf8_lossy(message.payload()).trim().parse().unwrap_or(0),
        None => 0,
    };
    while ws.recv()?.is_some() {}
    println!("{count} cases");

    // Offer permessage-deflate, as browsers do.
    let mut config = Config::default();
    config.deflate(Some(DeflateConfig::default()));
    let config = Arc::new(config);
    for case in 1..=count {
        if let Err(error) = echo_case(&format!("{base}/runCase?case={case}&agent={agent}"), &config) {
            eprintln!("case {case}: {error}");
        }
    }

    let (mut ws, _) = connect(&format!("{base}/updateReports?agent={agent}"))?;
    ws.close(CloseCode::NORMAL, "")?;
    while ws.recv()?.is_some() {}
    println!("reports updated");
    Ok(())
}

fn echo_case(url: &str, config: &Arc<Config>) -> Result<(), Error> {
    let (mut ws, _) = ClientBuilder::new(url).config(config.clone()).connect()?;
    while let Some(message) = ws.recv_message()? {
        ws.send(message)?;
    }
    Ok(())
}
