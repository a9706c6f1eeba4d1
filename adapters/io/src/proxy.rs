//! Client connections through proxies, written once for every adapter: which proxy a
//! client uses ([`Route`]: the builder's choice or the environment), and the tunnel over
//! an async stream ([`tunnel`]). The protocols themselves are the core's
//! [`ProxyHandshake`].

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wsflow::{ClientRequest, Config, ProxyError, ProxyEvent, ProxyHandshake, ProxyUrl};

use crate::driver::{Io, Task};
use crate::{AsyncStream, Error};

/// Which proxy a [`ClientBuilder`](crate::ClientBuilder) uses.
#[derive(Clone, Debug, Default)]
pub(crate) enum ProxyChoice {
    /// The environment's (see [`Route`]).
    #[default]
    Environment,
    /// This one, or the error in its URL.
    Explicit(Result<ProxyUrl, ProxyError>),
    /// None.
    Direct,
}

/// Where a client connection goes: straight to the target, or through a proxy. From
/// [`ClientBuilder::route`](crate::ClientBuilder::route); an adapter opens TCP to
/// [`address`](Self::address), then runs the [`proxy_handshake`](Self::proxy_handshake)
/// (if any) before TLS and the upgrade.
///
///
/// # The environment
/// Unless the builder says [`proxy`](crate::ClientBuilder::proxy) or
/// [`no_proxy`](crate::ClientBuilder::no_proxy), a client reads, first set and non-empty wins:
///
/// | target | variables, in order |
/// |---|---|
/// | `ws://` | `ws_proxy`, `WS_PROXY`, `http_proxy`, `HTTP_PROXY`, `all_proxy`, `ALL_PROXY` |
/// | `wss://` | `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` |
///
/// The value is a proxy URL (`http://`, `socks5://`, `socks5h://`, or `host:port` for
/// HTTP; see [`ProxyUrl`]). `no_proxy` (or `NO_PROXY` when `no_proxy` is unset) lists,
/// separated by commas or spaces, the targets reached directly: `*` (all), host names
/// (`example.com` also matches `api.example.com`; a leading `.` or `*.` is the same),
/// IP addresses and CIDR blocks (`10.0.0.0/8`, `::1/128`). Loopback targets
/// (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) are never sent to a proxy from the
/// environment, as curl, Go and most browsers do; an explicit
/// [`proxy`](crate::ClientBuilder::proxy) applies to them too.
///
/// ```
/// # struct Adapter;
/// let builder = wsflow_io::ClientBuilder::<Adapter>::new("ws://example.com:9002/chat")
///     .proxy("socks5h://user:pw@127.0.0.1:1080");
/// let route = builder.route().unwrap();
/// assert_eq!(route.address(), ("127.0.0.1", 1080));
/// assert_eq!(route.proxy().unwrap().to_string(), "socks5h://user:***@127.0.0.1:1080");
/// ```
#[derive(Clone, Debug)]
pub struct Route {
    proxy: Option<ProxyUrl>,
    /// The target, without IPv6 brackets (for `socks5://`, its address once resolved).
    host: String,
    port: u16,
    secure: bool,
    config: Arc<Config>,
}

impl Route {
    pub(crate) fn new(request: &ClientRequest, config: Arc<Config>, choice: &ProxyChoice) -> Result<Self, Error> {
        let proxy = match choice {
            ProxyChoice::Environment => from_environment(request, &|name| std::env::var(name).ok())?,
            ProxyChoice::Explicit(proxy) => Some(proxy.clone().map_err(Error::Proxy)?),
            ProxyChoice::Direct => None,
        };
        Ok(Self {
            proxy,
            host: request.host_unbracketed().to_owned(),
            port: request.port(),
            secure: request.is_secure(),
            config,
        })
    }

    /// The proxy, if the connection goes through one.
    pub fn proxy(&self) -> Option<&ProxyUrl> {
        self.proxy.as_ref()
    }

    /// The host and port to open TCP to: the proxy's, or the target's.
    pub fn address(&self) -> (&str, u16) {
        match &self.proxy {
            Some(proxy) => (proxy.host(), proxy.port()),
            None => (&self.host, self.port),
        }
    }

    /// The error for a failed TCP connect to [`address`](Self::address): through a proxy,
    /// it says the proxy is unreachable (the `io::ErrorKind` is kept).
    pub fn unreachable(&self, error: io::Error) -> Error {
        match &self.proxy {
            Some(proxy) => Error::Transport(io::Error::new(
                error.kind(),
                format!("proxy {proxy} unreachable: {error}"),
            )),
            None => Error::Transport(error),
        }
    }

    /// For a `socks5://` proxy and a target named by a host name: the name and port to
    /// resolve on the client, then to pass to [`resolved`](Self::resolved).
    pub fn to_resolve(&self) -> Option<(&str, u16)> {
        let proxy = self.proxy.as_ref()?;
        (proxy.resolves_target_locally() && self.host.parse::<IpAddr>().is_err()).then_some((&self.host, self.port))
    }

    /// The addresses the target's name resolved to (see [`to_resolve`](Self::to_resolve)):
    /// the proxy is asked for the first.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub fn resolved(&mut self, addresses: impl IntoIterator<Item = SocketAddr>) -> io::Result<()> {
        let address = addresses
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} has no address", self.host)))?;
        self.host = address.ip().to_string();
        Ok(())
    }

    /// The proxy handshake to run first, or `None` for a direct connection.
    ///
    /// # Errors
    /// [`Error::Proxy`] for a target the proxy cannot be asked for.
    pub fn proxy_handshake(&self, now: Instant) -> Result<Option<ProxyHandshake>, Error> {
        let Some(proxy) = &self.proxy else {
            return Ok(None);
        };
        Ok(Some(ProxyHandshake::new(
            proxy,
            &self.host,
            self.port,
            &self.config,
            now,
        )?))
    }

    /// The outcome of the proxy handshake: the bytes that followed the proxy's reply (to
    /// hand to the upgrade with [`ClientBuilder::read_ahead`](crate::ClientBuilder::read_ahead)),
    /// or the error. For `wss://`, bytes there are an error ([`ProxyError::EarlyData`]): a
    /// TLS server never speaks first.
    ///
    /// # Errors
    /// [`Error::Proxy`] with what went wrong.
    pub fn tunnel_opened(&self, event: ProxyEvent, handshake: ProxyHandshake) -> Result<Bytes, Error> {
        match event {
            ProxyEvent::Connected => {
                let leftover = handshake.into_leftover();
                if self.secure && !leftover.is_empty() {
                    return Err(ProxyError::EarlyData(leftover.len()).into());
                }
                Ok(leftover)
            }
            ProxyEvent::Failed(error) => Err(error.into()),
        }
    }
}

/// Runs the proxy handshake of `route` (if any) over `stream`, the TCP connection to
/// [`Route::address`]: what an async adapter does before TLS and the upgrade. Returns the
/// bytes that followed the proxy's reply (see [`Route::tunnel_opened`]).
///
/// ```no_run
/// # struct Adapter;
/// # async fn open<S: wsflow_io::AsyncStream>(tcp: S) -> Result<(), wsflow_io::Error> {
/// let builder = wsflow_io::ClientBuilder::<Adapter>::new("ws://example.com/").proxy("http://proxy:3128");
/// let route = builder.route()?;
/// // `tcp`: a connection to `route.address()`, as the adapter's stream.
/// let read_ahead = wsflow_io::tunnel(&route, tcp).await?;
/// let builder = builder.read_ahead(read_ahead);
/// // Then TLS for wss://, and the upgrade: wsflow_io::connect_on(builder, stream).
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Proxy`] when the proxy refuses, answers nonsense, closes, or says nothing
/// within [`Config::handshake_timeout`]; [`Error::Transport`] if the stream fails.
pub async fn tunnel<S: AsyncStream>(route: &Route, stream: S) -> Result<Bytes, Error> {
    let Some(mut handshake) = route.proxy_handshake(Io::<S>::now())? else {
        return Ok(Bytes::new());
    };
    let mut io = Io::new(stream);
    let event = poll_fn(|cx| {
        io.poll_event(&mut handshake, Task::Receiver, cx, ProxyHandshake::poll_event, |_| {
            false
        })
    })
    .await?;
    route.tunnel_opened(event, handshake)
}

/// The proxy the environment gives for `request`, if any.
fn from_environment(request: &ClientRequest, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<ProxyUrl>, Error> {
    let names: [&str; 6] = if request.is_secure() {
        [
            "wss_proxy",
            "WSS_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]
    } else {
        [
            "ws_proxy",
            "WS_PROXY",
            "http_proxy",
            "HTTP_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ]
    };
    let Some((name, value)) = names.iter().find_map(|&name| {
        var(name)
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    }) else {
        return Ok(None);
    };
    let host = request.host_unbracketed();
    let no_proxy = var("no_proxy").or_else(|| var("NO_PROXY")).unwrap_or_default();
    if is_loopback(host) || bypasses(&no_proxy, host) {
        return Ok(None);
    }
    match ProxyUrl::parse(&value) {
        Ok(proxy) => Ok(Some(proxy)),
        Err(error) => Err(Error::Transport(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the proxy in ${name}: {error}"),
        ))),
    }
}

/// `localhost`, `*.localhost`, and loopback addresses.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

/// Whether a `no_proxy` list says to reach `host` directly.
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((network, bits)) = entry.split_once('/') {
                return ip.is_some_and(|ip| in_block(ip, network, bits));
            }
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(address) = entry.parse::<IpAddr>() {
                return ip == Some(address);
            }
            let name = entry
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.');
            let name = name.to_ascii_lowercase();
            !name.is_empty()
                && (host == name || host.strip_suffix(name.as_str()).is_some_and(|head| head.ends_with('.')))
        })
}

/// Whether `ip` is in the CIDR block `network/bits`.
fn in_block(ip: IpAddr, network: &str, bits: &str) -> bool {
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match (ip, network.parse::<IpAddr>()) {
        (IpAddr::V4(ip), Ok(IpAddr::V4(network))) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), Ok(IpAddr::V6(network))) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn chosen(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let request = ClientRequest::new(url).unwrap();
        from_environment(&request, &env(vars))
            .unwrap()
            .map(|proxy| proxy.to_string())
    }

    #[test]
    fn the_variables_are_read_in_order() {
        let all = [
            ("ws_proxy", "socks5://ws:1"),
            ("WS_PROXY", "http://WS:1"),
            ("http_proxy", "http://http:1"),
            ("HTTP_PROXY", "http://HTTP:1"),
            ("wss_proxy", "http://wss:1"),
            ("WSS_PROXY", "http://WSS:1"),
            ("https_proxy", "http://https:1"),
            ("HTTPS_PROXY", "http://HTTPS:1"),
            ("all_proxy", "socks5h://all:1"),
            ("ALL_PROXY", "socks5h://ALL:1"),
        ];
        for skip in 0..=all.len() {
            let vars = &all[skip..];
            let ws = chosen("ws://example.com/", vars);
            let wss = chosen("wss://example.com/", vars);
            let expect = |names: &[&str]| {
                vars.iter()
                    .find(|(name, _)| names.contains(name))
                    .map(|(_, value)| ProxyUrl::parse(value).unwrap().to_string())
            };
            assert_eq!(
                ws,
                expect(&[
                    "ws_proxy",
                    "WS_PROXY",
                    "http_proxy",
                    "HTTP_PROXY",
                    "all_proxy",
                    "ALL_PROXY"
                ])
            );
            assert_eq!(
                wss,
                expect(&[
                    "wss_proxy",
                    "WSS_PROXY",
                    "https_proxy",
                    "HTTPS_PROXY",
                    "all_proxy",
                    "ALL_PROXY"
                ])
            );
        }
        assert_eq!(
            chosen("ws://e/", &[("ws_proxy", " "), ("http_proxy", "p:3128")]).unwrap(),
            "http://p:3128"
        );
        assert_eq!(chosen("ws://e/", &[]), None);
        let request = ClientRequest::new("ws://e/").unwrap();
        let error = from_environment(&request, &env(&[("ALL_PROXY", "ftp://x")])).unwrap_err();
        assert!(error.to_string().contains("$ALL_PROXY"), "{error}");
    }

    #[test]
    fn no_proxy_and_loopback_targets_go_direct() {
        let proxy = ("all_proxy", "http://p:1");
        for (url, no_proxy, direct) in [
            ("ws://localhost:9/", "", true),
            ("ws://app.localhost/", "", true),
            ("ws://127.0.0.2/", "", true),
            ("ws://[::1]:9/", "", true),
            ("ws://example.com/", "*", true),
            ("ws://example.com/", "other.org, example.com", true),
            ("ws://api.example.com/", "example.com", true),
            ("ws://api.example.com/", ".example.com", true),
            ("ws://API.Example.COM./", "*.example.com", true),
            ("ws://badexample.com/", "example.com", false),
            ("ws://example.com.evil/", "example.com", false),
            ("ws://10.1.2.3/", "10.0.0.0/8", true),
            ("ws://11.1.2.3/", "10.0.0.0/8", false),
            ("ws://192.0.2.7/", "192.0.2.7", true),
            ("ws://[2001:db8::1]/", "2001:db8::/32", true),
            ("ws://[2001:db8::1]/", "[2001:db8::1]", true),
            ("ws://[2001:db9::1]/", "2001:db8::/32", false),
            ("ws://example.com/", "", false),
            ("ws://example.com/", ",, ", false),
            ("ws://10.1.2.3/", "10.0.0.0/99", false),
        ] {
            let chosen = chosen(url, &[proxy, ("no_proxy", no_proxy)]);
            assert_eq!(chosen.is_none(), direct, "{url} with no_proxy={no_proxy:?}");
        }
        // NO_PROXY counts when no_proxy is unset.
        assert_eq!(chosen("ws://e.org/", &[proxy, ("NO_PROXY", "e.org")]), None);
    }
}
