//! Proxy URLs: `http://[user:pass@]host[:port]`, `socks5://..`, `socks5h://..`.

use std::fmt;
use std::str::FromStr;

use super::ProxyError;

/// The protocol spoken to a proxy.
///
/// ```
/// use wsflow::{ProxyKind, ProxyUrl};
/// assert_eq!(ProxyUrl::parse("socks5h://proxy:1080").unwrap().kind(), ProxyKind::Socks5h);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy: `CONNECT host:port` (RFC 9110 §9.3.6), Basic credentials.
    Http,
    /// SOCKS5 (RFC 1928) with the target resolved by the client (`socks5://`).
    Socks5,
    /// SOCKS5 with the target name sent to the proxy, which resolves it (`socks5h://`).
    Socks5h,
}

impl ProxyKind {
    /// The port of a proxy URL that names none: 80 for `http://`, 1080 for SOCKS.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Socks5 | Self::Socks5h => 1080,
        }
    }

    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socks5 => "socks5",
            Self::Socks5h => "socks5h",
        }
    }
}

/// A parsed proxy URL: the kind, the proxy's host and port, and optional credentials
/// (percent-decoded from the user information).
///
/// A URL without a scheme (`proxy.example:3128`, as often found in `http_proxy`) is an
/// HTTP proxy. `https://` proxies (TLS to the proxy) and SOCKS4 are not supported and are
/// reported as [`ProxyError::InvalidUrl`]. The password never appears in `Debug` or
/// `Display`.
///
/// ```
/// use wsflow::{ProxyKind, ProxyUrl};
/// let proxy = ProxyUrl::parse("http://me:p%40ss@[::1]:3128").unwrap();
/// assert_eq!(proxy.kind(), ProxyKind::Http);
/// assert_eq!((proxy.host(), proxy.port()), ("::1", 3128));
/// assert_eq!(proxy.credentials(), Some(("me", "p@ss")));
/// assert_eq!(proxy.to_string(), "http://me:***@[::1]:3128");
/// assert_eq!(ProxyUrl::parse("proxy.example").unwrap().port(), 80);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    kind: ProxyKind,
    /// Without IPv6 brackets.
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.scheme())?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ProxyUrl {
    type Err = ProxyError;

    fn from_str(url: &str) -> Result<Self, ProxyError> {
        Self::parse(url)
    }
}

impl ProxyUrl {
    /// Parses a proxy URL.
    ///
    /// # Errors
    /// [`ProxyError::InvalidUrl`] for an unsupported scheme, a missing host, a bad port or
    /// bad percent-encoding in the credentials.
    pub fn parse(url: &str) -> Result<Self, ProxyError> {
        let invalid = |problem| ProxyError::InvalidUrl(problem);
        let url = url.trim();
        let (kind, rest) = match url.split_once("://") {
            None => (ProxyKind::Http, url),
            Some((scheme, rest)) => {
                let kind = match scheme.to_ascii_lowercase().as_str() {
                    "http" => ProxyKind::Http,
                    "socks5" => ProxyKind::Socks5,
                    "socks5h" => ProxyKind::Socks5h,
                    "https" => return Err(invalid("https:// proxies (TLS to the proxy) are not supported")),
                    "socks4" | "socks4a" => return Err(invalid("SOCKS4 is not supported (use socks5 or socks5h)")),
                    _ => return Err(invalid("the scheme must be http, socks5 or socks5h")),
                };
                (kind, rest)
            }
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                Some((percent_decode(user)?, percent_decode(password)?))
            }
        };
        let (host, port) = crate::handshake::split_host_port(host_port).map_err(invalid)?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control() || c == '[' || c == ']') {
            return Err(invalid("missing or invalid host"));
        }
        let port = port.unwrap_or(kind.default_port());
        Ok(Self {
            kind,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// The protocol spoken to the proxy.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host (IPv6 literals without brackets), as a resolver wants it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password, percent-decoded (the password is empty when the URL
    /// has none).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// Whether the client must resolve the target's name itself and give the proxy an
    /// address (`socks5://`); otherwise the proxy gets the name.
    pub fn resolves_target_locally(&self) -> bool {
        self.kind == ProxyKind::Socks5
    }
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, ProxyError> {
    let bad = ProxyError::InvalidUrl("bad percent-encoding in the credentials");
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3).ok_or(bad.clone())?;
            let high = (hex[0] as char).to_digit(16).ok_or(bad.clone())?;
            let low = (hex[1] as char).to_digit(16).ok_or(bad.clone())?;
            decoded.push((high * 16 + low) as u8);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| ProxyError::InvalidUrl("credentials that are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let proxy = ProxyUrl::parse("socks5://u%3Aser:pa:ss@127.0.0.1").unwrap();
        assert_eq!(
            (proxy.kind(), proxy.host(), proxy.port()),
            (ProxyKind::Socks5, "127.0.0.1", 1080)
        );
        assert_eq!(proxy.credentials(), Some(("u:ser", "pa:ss")));
        assert!(proxy.resolves_target_locally());
        let proxy = ProxyUrl::parse(" HTTP://proxy.corp:3128/ ").unwrap();
        assert_eq!(
            (proxy.kind(), proxy.host(), proxy.port()),
            (ProxyKind::Http, "proxy.corp", 3128)
        );
        assert_eq!(proxy.credentials(), None);
        let proxy = ProxyUrl::parse("socks5h://user@h").unwrap();
        assert_eq!(proxy.credentials(), Some(("user", "")));
        assert!(!proxy.resolves_target_locally());
        assert_eq!(ProxyUrl::parse("[::1]").unwrap().to_string(), "http://[::1]:80");
        let debug = format!("{:?}", ProxyUrl::parse("http://a:secret@h").unwrap());
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn rejects_what_is_not_a_supported_proxy() {
        for bad in [
            "https://h:443",
            "socks4://h",
            "ftp://h",
            "http://",
            "http://h:0",
            "http://h:65536",
            "http://h:+80",
            "http://[::1",
            "http://a%4@h",
            "http://a%zz@h",
            "http://%ff@h",
            "http://a b",
        ] {
            assert!(matches!(ProxyUrl::parse(bad), Err(ProxyError::InvalidUrl(_))), "{bad}");
        }
    }
}
