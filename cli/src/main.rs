//! `wsflow`: a command-line WebSocket client (`wsflow connect URL`) and server
//! (`wsflow serve ADDR`) for people who debug, script and test, on `wsflow-blocking`.
//! See `wsflow --help`, and the README's "Command line" section.

mod client;
mod input;
mod server;
mod session;
mod show;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Exit statuses, one per way a run can end (documented in `--help`).
pub mod exit {
    /// The connection closed normally (closing handshake completed), or `serve` stopped.
    pub const OK: u8 = 0;
    /// A local failure: stdin or stdout, a file, binding the listening address.
    pub const LOCAL: u8 = 1;
    /// Bad arguments (clap's usage message), a bad URL or header.
    pub const USAGE: u8 = 2;
    /// No connection: DNS, TCP (refused, unreachable, timed out) or TLS (certificate) failure.
    pub const CONNECT: u8 = 3;
    /// The server answered the upgrade with another HTTP status (printed, with the body).
    pub const REJECTED: u8 = 4;
    /// A protocol error (in the handshake or after it), or an abnormal close: no closing
    /// handshake, a timeout, or the peer closed with a code other than 1000/1001.
    pub const PROTOCOL: u8 = 5;
    /// A second Ctrl-C: exit at once without waiting for the closing handshake.
    pub const INTERRUPTED: u8 = 130;
}

const EXIT_CODES: &str = "\
Exit status:
  0    normal close (closing handshake done: we closed, or the peer sent 1000/1001)
  1    local failure (stdin/stdout, a file, the listening address)
  2    bad arguments, URL or header
  3    connect failure: DNS, TCP refused/unreachable/timed out, TLS/certificate
  4    handshake rejected by the server (its HTTP status and body are printed)
  5    protocol error or abnormal close (the close code and reason are printed)
  130  a second Ctrl-C (the first one closes with 1001 and waits for the peer)";

/// A command-line WebSocket client and server.
#[derive(Debug, Parser)]
#[command(name = "wsflow", version, after_help = EXIT_CODES, arg_required_else_help = true)]
struct Cli {
    /// Log on stderr every frame (time, direction, opcode, FIN, RSV1, payload length), each
    /// message, ping, pong and close (kind, length, close code and reason), and the
    /// handshake's status, subprotocol and extensions.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to a ws:// or wss:// URL: stdin lines are sent as text messages, messages
    /// received are printed on stdout.
    #[command(after_help = CONNECT_HELP)]
    Connect(ConnectArgs),
    /// Serve WebSocket connections on ADDR: echo (default), broadcast, or a process per
    /// connection.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
}

const CONNECT_HELP: &str = "\
Each line of stdin is sent as a text message. EOF closes with 1000 and waits for the
server's close; replies that would come later are not waited for (use --once, or keep
stdin open). Text received is printed as is (one message a line); binary as
`<binary N bytes> 01 02 ..` (raw with --binary). Errors and the -v log go to stderr.

When stdin is a terminal, lines starting with / are commands:
  /ping [text]            send a ping (its pong prints the round-trip time)
  /close [code] [reason]  start the closing handshake (default 1000)
  /binary HEX             send a binary message (e.g. /binary 48 65 6c 6c 6f)
  /quit                   close with 1000 and exit
  //text                  send the text /text
Ctrl-C closes with 1001 and waits for the server (a second Ctrl-C exits at once).

Examples:
  wsflow connect ws://127.0.0.1:9002/
  echo hello | wsflow connect --once ws://127.0.0.1:9002/
  wsflow connect -H 'Authorization: Bearer TOKEN' --subprotocol chat wss://example.com/ws
  wsflow connect --binary --once ws://127.0.0.1:9002/ < image.png > reply.bin
  wsflow connect --cacert ca.pem --ping-interval 5 -v wss://localhost:9443/

Exit status:
  0 normal close, 1 local failure, 2 bad arguments, 3 connect/DNS/TLS failure,
  4 handshake rejected, 5 protocol error or abnormal close, 130 second Ctrl-C";

const SERVE_HELP: &str = "\
Prints `listening on ws://ADDR/` on stdout once bound (port 0 picks a free port).
permessage-deflate is accepted when a client offers it, unless --no-deflate.

Examples:
  wsflow serve 127.0.0.1:9002
  wsflow serve --broadcast 0.0.0.0:9002
  wsflow serve --exec 'sed -u s/^/echo:/' 127.0.0.1:9002
  wsflow serve --tls-cert cert.pem --tls-key key.pem 127.0.0.1:9443
  wsflow serve --origin https://example.com --subprotocol chat -v 127.0.0.1:9002

Exit status: it serves until killed; 1 when it cannot listen or read the TLS files,
2 for bad arguments.";

#[derive(Debug, Args)]
struct ConnectArgs {
    /// The server's URL: ws://host[:port]/path or wss://..
    url: String,

    /// Add a header to the upgrade request: 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,

    /// Offer a subprotocol (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,

    /// Send this Origin header.
    #[arg(long)]
    origin: Option<String>,

    /// Do not offer permessage-deflate (offered by default).
    #[arg(long)]
    no_deflate: bool,

    /// Largest message accepted (K, M, G suffixes); a larger one closes with 1009 and is
    /// reported, never printed in part.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = show::parse_size)]
    max_size: usize,

    /// Give up connecting (TCP, TLS and the upgrade) after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = show::parse_seconds)]
    connect_timeout: Duration,

    /// Send a ping every SECS seconds and print each pong's round-trip time on stderr.
    #[arg(long, value_name = "SECS", value_parser = show::parse_seconds)]
    ping_interval: Option<Duration>,

    /// Send stdin, print the first message received, close with 1000 and exit.
    #[arg(short = '1', long)]
    once: bool,

    /// Binary mode: stdin is sent as one binary message, streamed in fragments, at EOF;
    /// binary messages received are written raw to stdout.
    #[arg(long)]
    binary: bool,

    /// Accept any TLS certificate (the connection is encrypted, but to anyone).
    #[arg(short = 'k', long, conflicts_with = "cacert")]
    insecure: bool,

    /// Trust only the CA certificates (PEM) in FILE for wss:// (default: Mozilla's roots).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// Connect through this proxy: `http://[user:pass@]host:port` (HTTP CONNECT),
    /// `socks5h://..` (the proxy resolves the name) or `socks5://..`. Default: from the
    /// environment (`wss_proxy`/`ws_proxy`, `https_proxy`/`http_proxy`, `all_proxy`, minus
    /// `no_proxy`; loopback targets go direct).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    proxy: Option<String>,

    /// Connect directly, whatever the environment says.
    #[arg(long)]
    no_proxy: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").args(["echo", "broadcast", "exec"])))]
struct ServeArgs {
    /// The address to listen on (port 0: any free port).
    #[arg(default_value = "127.0.0.1:9002")]
    addr: String,

    /// Send every message back to its sender (the default).
    #[arg(long)]
    echo: bool,

    /// Send every message to every connected client (the sender too).
    #[arg(long)]
    broadcast: bool,

    /// Run CMD (with sh -c) for each connection: text messages go to its stdin as lines
    /// (binary ones as raw bytes), each line of its stdout comes back as a text message;
    /// its stdout's end closes the connection with 1000. Make its output line-buffered
    /// (`sed -u`, `stdbuf -oL`, `python3 -u`): what it writes after the client closed is lost.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,

    /// Subprotocols the server speaks (repeatable): the first the client offers is chosen.
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,

    /// Only accept upgrades with this Origin header (repeatable); others get 403.
    #[arg(long = "origin", value_name = "ORIGIN")]
    origins: Vec<String>,

    /// Do not accept permessage-deflate.
    #[arg(long)]
    no_deflate: bool,

    /// Largest message accepted (K, M, G suffixes); a larger one closes with 1009.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = show::parse_size)]
    max_size: usize,

    /// Most connections at a time; more are refused with 503.
    #[arg(long, value_name = "N", default_value = "1024")]
    max_connections: usize,

    /// Serve wss://: the certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// Serve wss://: the private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: write a header as 'Name: value'"))?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    if !valid_name {
        return Err(format!("{name:?} is not a header name"));
    }
    let value = value.trim();
    if value.bytes().any(|byte| byte == b'\r' || byte == b'\n' || byte == 0) {
        return Err(format!("the value of {name} holds a line break"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Connect(args) => client::run(args, cli.verbose),
        Command::Serve(args) => server::run(args, cli.verbose),
    };
    ExitCode::from(code)
}
