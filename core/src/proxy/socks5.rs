//! SOCKS5 messages (RFC 1928) and the user name and password subnegotiation (RFC 1929).

// `core::net`: address parsing only (the sans-IO check forbids `std::net` in the core).
use core::net::IpAddr;

use bytes::Bytes;

use super::{ProxyError, SocksReply};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASSWORD: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xFF;
const CONNECT: u8 = 1;
const IPV4: u8 = 1;
const DOMAIN: u8 = 3;
const IPV6: u8 = 4;
/// The version of the RFC 1929 subnegotiation.
const AUTH_VERSION: u8 = 1;

/// The method the proxy chose.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Method {
    NoAuth,
    UserPassword,
}

/// The greeting: no authentication, and user name and password when there are credentials.
pub(super) fn greeting(with_credentials: bool) -> Bytes {
    if with_credentials {
        Bytes::from_static(&[VERSION, 2, NO_AUTH, USER_PASSWORD])
    } else {
        Bytes::from_static(&[VERSION, 1, NO_AUTH])
    }
}

/// The RFC 1929 request.
pub(super) fn auth_request(user: &str, password: &str) -> Result<Bytes, ProxyError> {
    let too_long = ProxyError::InvalidTarget("SOCKS5 user names are 1 to 255 bytes, passwords at most 255");
    let user_len = u8::try_from(user.len())
        .ok()
        .filter(|&len| len > 0)
        .ok_or(too_long.clone())?;
    let password_len = u8::try_from(password.len()).map_err(|_| too_long)?;
    let mut request = Vec::with_capacity(3 + user.len() + password.len());
    request.extend_from_slice(&[AUTH_VERSION, user_len]);
    request.extend_from_slice(user.as_bytes());
    request.push(password_len);
    request.extend_from_slice(password.as_bytes());
    Ok(Bytes::from(request))
}

/// The `CONNECT` request for `host` (an address, or a name the proxy resolves unless
/// `address_only`) and `port`.
pub(super) fn connect_request(host: &str, port: u16, address_only: bool) -> Result<Bytes, ProxyError> {
    let mut request = vec![VERSION, CONNECT, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(IPV4);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(IPV6);
            request.extend_from_slice(&ip.octets());
        }
        Err(_) if address_only => {
            return Err(ProxyError::InvalidTarget(
                "socks5:// needs the target's address (resolve the name first, or use socks5h://)",
            ))
        }
        Err(_) => {
            let len = u8::try_from(host.len())
                .map_err(|_| ProxyError::InvalidTarget("a SOCKS5 host name is at most 255 bytes"))?;
            request.extend_from_slice(&[DOMAIN, len]);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    Ok(Bytes::from(request))
}

/// The method selection message (2 bytes).
pub(super) fn method(reply: &[u8], offered_auth: bool) -> Result<Method, ProxyError> {
    match *reply {
        [VERSION, NO_AUTH] => Ok(Method::NoAuth),
        [VERSION, USER_PASSWORD] if offered_auth => Ok(Method::UserPassword),
        [VERSION, NO_ACCEPTABLE] => Err(ProxyError::SocksNoAcceptableMethod),
        [VERSION, _] => Err(ProxyError::Malformed(
            "the SOCKS5 proxy chose a method that was not offered",
        )),
        _ => Err(ProxyError::Malformed("not a SOCKS5 reply")),
    }
}

/// The RFC 1929 reply (2 bytes): `Ok` for status 0.
pub(super) fn auth_status(reply: &[u8]) -> Result<(), ProxyError> {
    match *reply {
        [AUTH_VERSION, 0] => Ok(()),
        [AUTH_VERSION, status] => Err(ProxyError::SocksAuthFailed(status)),
        _ => Err(ProxyError::Malformed("not a SOCKS5 user name and password reply")),
    }
}

/// How long the `CONNECT` reply is, as far as `buffered` (its first bytes) tells: the
/// bytes needed to learn more, or its full length once known. Fails as soon as the
/// version, the reply code or the address type is wrong.
pub(super) fn reply_len(buffered: &[u8]) -> Result<usize, ProxyError> {
    let Some(&[version, code]) = buffered.get(..2) else {
        return Ok(2);
    };
    if version != VERSION {
        return Err(ProxyError::Malformed("not a SOCKS5 reply"));
    }
    if code != 0 {
        return Err(ProxyError::SocksRefused(SocksReply::from_code(code)));
    }
    let Some(&address_type) = buffered.get(3) else {
        return Ok(4);
    };
    // VER REP RSV ATYP, the address, the port.
    match address_type {
        IPV4 => Ok(4 + 4 + 2),
        IPV6 => Ok(4 + 16 + 2),
        DOMAIN => Ok(buffered.get(4).map_or(5, |&len| 5 + usize::from(len) + 2)),
        _ => Err(ProxyError::Malformed("unknown address type in the SOCKS5 reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_follow_rfc_1928_and_1929() {
        assert_eq!(
            &connect_request("10.0.0.1", 80, true).unwrap()[..],
            &[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]
        );
        assert_eq!(
            &connect_request("ab.c", 0x1F90, false).unwrap()[..],
            &[5, 1, 0, 3, 4, b'a', b'b', b'.', b'c', 0x1F, 0x90]
        );
        assert_eq!(connect_request("::1", 1, true).unwrap()[3], IPV6);
        assert!(connect_request("ab.c", 80, true).is_err());
        assert!(connect_request(&"a".repeat(256), 80, false).is_err());
        assert_eq!(&auth_request("u", "pw").unwrap()[..], &[1, 1, b'u', 2, b'p', b'w']);
        assert!(auth_request("", "pw").is_err());
        assert!(auth_request("u", &"p".repeat(256)).is_err());
    }

    #[test]
    fn replies_are_measured_before_they_are_complete() {
        assert_eq!(reply_len(&[]), Ok(2));
        assert_eq!(reply_len(&[5, 0]), Ok(4));
        assert_eq!(reply_len(&[5, 0, 0, 1]), Ok(10));
        assert_eq!(reply_len(&[5, 0, 0, 3]), Ok(5));
        assert_eq!(reply_len(&[5, 0, 0, 3, 9]), Ok(16));
        assert_eq!(reply_len(&[5, 0, 0, 4]), Ok(22));
        assert_eq!(reply_len(&[4, 0]), Err(ProxyError::Malformed("not a SOCKS5 reply")));
        assert_eq!(
            reply_len(&[5, 2]),
            Err(ProxyError::SocksRefused(SocksReply::NotAllowed))
        );
        assert!(reply_len(&[5, 0, 0, 9]).is_err());
        assert_eq!(
            method(&[5, 2], false),
            Err(ProxyError::Malformed(
                "the SOCKS5 proxy chose a method that was not offered"
            ))
        );
        assert_eq!(auth_status(&[1, 1]), Err(ProxyError::SocksAuthFailed(1)));
    }
}
