//! Runs the Autobahn fuzzing server's test cases: `autobahn-client BASE_URL AGENT`
//! (default `ws://127.0.0.1:9001 wsflow-blocking`).

use wsflow_blocking::{connect, CloseCode, Error};

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

    for case in 1..=count {
        if let Err(error) = echo_case(&format!("{base}/runCase?case={case}&agent={agent}")) {
            eprintln!("case {case}: {error}");
        }
    }

    let (mut ws, _) = connect(&format!("{base}/updateReports?agent={agent}"))?;
    ws.close(CloseCode::NORMAL, "")?;
    while ws.recv()?.is_some() {}
    println!("reports updated");
    Ok(())
}

fn echo_case(url: &str) -> Result<(), Error> {
    let (mut ws, _) = connect(url)?;
    while let Some(message) = ws.recv_message()? {
        match ws.send(message) {
            // The server's close frame came in the same read: the core already answered it.
            Err(Error::Send(_)) => {}
            other => other?,
        }
    }
    Ok(())
}
