//! HTTP `CONNECT` (RFC 9110 §9.3.6): the request, and the reply head's verdict.

use base64::Engine as _;
use bytes::Bytes;

use super::ProxyError;

/// `CONNECT host:port HTTP/1.1` with the same authority in `Host`, and Basic credentials
/// in `Proxy-Authorization` when there are some. `host` has no brackets; an IPv6 literal
/// gets them back here.
pub(super) fn request(host: &str, port: u16, credentials: Option<(&str, &str)>) -> Bytes {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    Bytes::from(request)
}

/// `Ok` for a 2xx reply (the tunnel is open; a body announced by a 2xx to `CONNECT` is
/// ignored, as RFC 9110 says), [`ProxyError::HttpRefused`] for another status.
pub(super) fn check_reply(head: &[u8], max_headers: usize) -> Result<(), ProxyError> {
    let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
    let mut reply = httparse::Response::new(&mut fields);
    match reply.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ProxyError::Malformed("incomplete HTTP response head")),
        Err(httparse::Error::TooManyHeaders) => return Err(ProxyError::TooLarge),
        Err(_) => return Err(ProxyError::Malformed("malformed HTTP response head")),
    }
    let status = reply.code.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let authenticate = (status == 407)
        .then(|| {
            reply
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("proxy-authenticate"))
                .map(|header| scheme_of(header.value))
        })
        .flatten();
    Err(ProxyError::HttpRefused {
        status,
        reason: clean(reply.reason.unwrap_or_default(), 128),
        authenticate,
    })
}

/// The authentication scheme (the first token) of a `Proxy-Authenticate` value.
fn scheme_of(value: &[u8]) -> String {
    let token: Vec<u8> = value
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(|byte| crate::handshake::is_token_byte(*byte))
        .take(32)
        .collect();
    String::from_utf8_lossy(&token).into_owned()
}

/// `text` without control characters, at most `max` characters.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_target_and_the_credentials() {
        let request = request("::1", 9001, Some(("Aladdin", "open sesame")));
        assert_eq!(
            &request[..],
            b"CONNECT [::1]:9001 HTTP/1.1\r\nHost: [::1]:9001\r\n\
              Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        assert_eq!(
            &super::request("example.com", 443, None)[..],
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
    }

    #[test]
    fn a_407_reports_the_scheme() {
        let head = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                     Proxy-Authenticate: Basic realm=\"corp\"\r\n\r\n";
        assert_eq!(
            check_reply(head, 8),
            Err(ProxyError::HttpRefused {
                status: 407,
                reason: "Proxy Authentication Required".into(),
                authenticate: Some("Basic".into()),
            })
        );
        assert_eq!(check_reply(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", 8), Ok(()));
        assert_eq!(
            check_reply(b"HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\n\r\n", 1),
            Err(ProxyError::TooLarge)
        );
    }
}
