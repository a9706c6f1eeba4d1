//! `ws://` and `wss://` URLs (RFC 6455 §3).

use std::fmt;

/// A URL that is not a usable WebSocket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError {
    url: String,
    problem: &'static str,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid WebSocket URL {:?}: {}", self.url, self.problem)
    }
}

impl std::error::Error for UrlError {}

/// The host and port of a URL's authority (`host`, `host:port`, `[v6]`, `[v6]:port`): the
/// host as written (an IPv6 literal with its brackets), and the port when one is given
/// (digits only, not 0). Shared by WebSocket and proxy URLs.
pub(crate) fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let close = after_bracket.find(']').ok_or("unclosed IPv6 literal")?;
        (&authority[..close + 2], &after_bracket[close + 1..])
    } else {
        match authority.rfind(':') {
            Some(colon) => (&authority[..colon], &authority[colon..]),
            None => (authority, ""),
        }
    };
    if port.is_empty() {
        return Ok((host, None));
    }
    let port = port
        .strip_prefix(':')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u16>().ok())
        .filter(|&port| port != 0)
        .ok_or("invalid port")?;
    Ok((host, Some(port)))
}

/// The parts of a WebSocket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WsUrl {
    pub secure: bool,
    /// Host as written, IPv6 literals with their brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, never empty.
    pub target: String,
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let error = |problem| UrlError {
            url: url.to_owned(),
            problem,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| error("no scheme"))?;
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(error("scheme must be ws or wss"));
        };
        if rest.contains('#') {
            return Err(error("fragments are not allowed"));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(error("user information is not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(error)?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(error("missing or invalid host"));
        }
        let port = port.unwrap_or(if secure { 443 } else { 80 });
        if target.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(error("whitespace in path"));
        }
        let target = match target {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        Ok(Self {
            secure,
            host: host.to_owned(),
            port,
            target,
        })
    }

    pub fn default_port(&self) -> u16 {
        if self.secure {
            443
        } else {
            80
        }
    }

    /// The `Host` header value: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let url = WsUrl::parse("ws://example.com/chat?room=1").unwrap();
        assert_eq!(
            (url.secure, url.host.as_str(), url.port, url.target.as_str()),
            (false, "example.com", 80, "/chat?room=1")
        );
        assert_eq!(url.host_header(), "example.com");
        let url = WsUrl::parse("wss://example.com:8443").unwrap();
        assert_eq!((url.secure, url.port, url.target.as_str()), (true, 8443, "/"));
        assert_eq!(url.host_header(), "example.com:8443");
        let url = WsUrl::parse("WS://[::1]:9001?x=y").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("[::1]", 9001, "/?x=y")
        );
        assert_eq!(url.host_header(), "[::1]:9001");
        assert_eq!(WsUrl::parse("ws://h:80/").unwrap().host_header(), "h");
    }

    #[test]
    fn rejects_what_is_not_a_websocket_url() {
        for bad in [
            "http://h/",
            "ws://",
            "ws://h:0/",
            "ws://h:99999/",
            "ws://h:+80/",
            "ws://h:/",
            "ws://[::1]x/",
            "ws://h/#frag",
            "ws://u@h/",
            "ws://[::1/",
            "h:80",
            "ws://h/a b",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
