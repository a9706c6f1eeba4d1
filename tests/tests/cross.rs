//! Every adapter's client against every adapter's server (3 x 3), over loopback TCP: text
//! with non-ASCII, 16 MiB binary, a fragmented send, ping/pong, subprotocol selection,
//! permessage-deflate, both close paths with their codes and reasons, and a rejected
//! handshake seen by the client with its status and body.

use std::net::TcpListener;
use std::thread;

use wsflow::{Accept, CloseCode, Message, Request, Response};
use wsflow_io::Decision;

mod common;
use common::{blocking_client, deflate_config, smol_client, smol_run, tokio_block_on, tokio_client, tokio_run};

/// The servers' decision: `/reject` gets 403, anything else is upgraded with the first of
/// "chat"/"superchat" the client offers.
fn decide(request: &Request) -> Decision {
    if request.path() == "/reject" {
        return Decision::Respond(Response::new(403).with_body("go away"));
    }
    Decision::Accept(Accept::new().subprotocol_from(request, &["chat", "superchat"]))
}

/// `close:CODE:REASON` asks the server to close with that code and reason.
fn close_command(message: &Message) -> Option<(CloseCode, String)> {
    let Message::Text(text) = message else { return None };
    let (code, reason) = text.strip_prefix("close:")?.split_once(':')?;
    Some((CloseCode::new(code.parse().ok()?), reason.to_owned()))
}

fn listener() -> (std::net::TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    (listener, url)
}

fn blocking_server() -> String {
    let (listener, url) = listener();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let Ok(wsflow_blocking::Accepted::WebSocket(mut ws, _)) =
                    wsflow_blocking::accept_with(stream, deflate_config(), decide)
                else {
                    return;
                };
                while let Ok(Some(message)) = ws.recv_message() {
                    let sent = match close_command(&message) {
                        Some((code, reason)) => ws.close(code, &reason),
                        None => ws.send(message),
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// One connection on an async adapter: upgrade, then echo (or close on command).
macro_rules! serve_async {
    ($krate:ident, $stream:expr) => {{
        let Ok($krate::Accepted::WebSocket(mut ws, _)) = $krate::accept_with($stream, deflate_config(), decide).await
        else {
            return;
        };
        while let Ok(Some(message)) = ws.recv_message().await {
            let sent = match close_command(&message) {
                Some((code, reason)) => ws.close(code, &reason).await,
                None => ws.send(message).await,
            };
            if sent.is_err() {
                break;
            }
        }
    }};
}

fn tokio_server() -> String {
    let (listener, url) = listener();
    thread::spawn(move || {
        tokio_block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move { serve_async!(wsflow_tokio, stream) });
            }
        });
    });
    url
}

fn smol_server() -> String {
    let (listener, url) = listener();
    thread::spawn(move || {
        smol::block_on(async move {
            let listener = smol::net::TcpListener::try_from(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                smol::spawn(async move { serve_async!(wsflow_smol, stream) }).detach();
            }
        });
    });
    url
}

macro_rules! matrix {
    ($($test:ident: $server:ident, $run:expr, $rejection:expr;)*) => {$(
        #[test]
        fn $test() {
            let url = $server();
            let rejection: fn(&str) = $rejection;
            rejection(&url);
            let run: fn(&str) = $run;
            run(&url);
        }
    )*};
}

matrix! {
    blocking_client_blocking_server: blocking_server, blocking_client::run, blocking_client::rejection;
    blocking_client_smol_server: smol_server, blocking_client::run, blocking_client::rejection;
    blocking_client_tokio_server: tokio_server, blocking_client::run, blocking_client::rejection;
    smol_client_blocking_server: blocking_server, smol_run, |url| smol::block_on(smol_client::rejection(url));
    smol_client_smol_server: smol_server, smol_run, |url| smol::block_on(smol_client::rejection(url));
    smol_client_tokio_server: tokio_server, smol_run, |url| smol::block_on(smol_client::rejection(url));
    tokio_client_blocking_server: blocking_server, tokio_run, |url| tokio_block_on(tokio_client::rejection(url));
    tokio_client_smol_server: smol_server, tokio_run, |url| tokio_block_on(tokio_client::rejection(url));
    tokio_client_tokio_server: tokio_server, tokio_run, |url| tokio_block_on(tokio_client::rejection(url));
}
