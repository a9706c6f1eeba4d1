//! permessage-deflate (RFC 7692): negotiation and the per-connection codec.
//!
//! Inflaters always run with a window at least as large as the peer may use, and every
//! inflated byte counts against [`Config::max_message_size`](crate::Config::max_message_size)
//! while inflating, so a small frame that would inflate to gigabytes fails with 1009 first.
//! zlib cannot deflate with a 256-byte window (8 bits): when that is negotiated for our
//! direction we send stored blocks, which hold no back-references and so fit any window.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::connection::Role;
use crate::error::ProtocolError;

/// The extension token.
const NAME: &str = "permessage-deflate";
/// What a sync flush leaves at the end of a compressed message (RFC 7692 §7.2.1).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// permessage-deflate settings: what to offer (client) or accept (server), and how hard
/// to compress.
///
/// ```
/// let mut deflate = wsflow::DeflateConfig::default();
/// deflate.server_max_window_bits(12).client_max_window_bits(12).threshold(64);
/// let mut config = wsflow::Config::default();
/// config.deflate(Some(deflate));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: u8,
    pub(crate) client_max_window_bits: u8,
    pub(crate) level: u32,
    pub(crate) window_bits: u8,
    pub(crate) threshold: usize,
}

/// Defaults chosen by measurement (`cargo bench -p wsflow --bench deflate`, 2,000 chat-like
/// JSON messages): compressing with a 12-bit window costs about 110 KiB less per connection
/// than 15 bits for JSON at 17% instead of 16%, and level 1 compresses about ten times
/// faster than level 6 for almost the same ratio. The negotiated limits stay at 15 bits
/// (nothing asked of the peer), which every peer accepts: asking a client for a smaller
/// window would save nothing here, as zlib-rs's inflater holds a 32 KiB window whatever the
/// window bits.
///
/// **Memory and context takeover.** A connection that keeps its compression context (the
/// default) holds a compressor from its first compressed message on: about 150 KiB, most of
/// it zlib-rs's hash table, whose size is fixed (zlib's `memLevel` does not shrink it there;
/// `cargo run --release --manifest-path bench/Cargo.toml --bin soak -- --chat 1000 ...`
/// measured about 240 KiB per connection after 100 chat messages each way, 44 KiB with
/// `server_no_context_takeover`, 3 KiB without deflate).
/// With `server_no_context_takeover(true)` on a server, every message is compressed from a
/// fresh context by a compressor the thread shares, so a connection holds none: chat-like
/// JSON then compresses less (each message alone), for a fraction of the memory.
impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            window_bits: 12,
            threshold: 32,
        }
    }
}

impl DeflateConfig {
    /// The server resets its compression context after every message (saves the server's
    /// compressor memory between messages, costs ratio).
    pub fn server_no_context_takeover(&mut self, value: bool) -> &mut Self {
        self.server_no_context_takeover = value;
        self
    }

    /// The client resets its compression context after every message.
    pub fn client_no_context_takeover(&mut self, value: bool) -> &mut Self {
        self.client_no_context_takeover = value;
        self
    }

    /// Largest LZ77 window the server may use, 8 to 15 bits (clamped).
    pub fn server_max_window_bits(&mut self, bits: u8) -> &mut Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// Largest LZ77 window the client may use, 8 to 15 bits (clamped).
    pub fn client_max_window_bits(&mut self, bits: u8) -> &mut Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The LZ77 window our compressor uses, 8 to 15 bits (clamped), within what was
    /// negotiated: a smaller window needs less memory and compresses a little less. Unlike
    /// the `*_max_window_bits` limits, nothing is asked of the peer.
    pub fn window_bits(&mut self, bits: u8) -> &mut Self {
        self.window_bits = bits.clamp(8, 15);
        self
    }

    /// zlib compression level, 0 (store) to 9 (best), clamped.
    pub fn level(&mut self, level: u32) -> &mut Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this are sent uncompressed.
    pub fn threshold(&mut self, bytes: usize) -> &mut Self {
        self.threshold = bytes;
        self
    }

    /// The client's `Sec-WebSocket-Extensions` offer. It always announces
    /// `client_max_window_bits` (with a value when limited), like browsers do.
    pub(crate) fn client_offer(&self) -> String {
        let mut offer = String::from(NAME);
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&format!("; server_max_window_bits={}", self.server_max_window_bits));
        }
        if self.client_max_window_bits < 15 {
            offer.push_str(&format!("; client_max_window_bits={}", self.client_max_window_bits));
        } else {
            offer.push_str("; client_max_window_bits");
        }
        offer
    }

    /// Server: picks the first acceptable permessage-deflate offer among `offers` (one
    /// extension element each) and returns the response element and the agreed parameters.
    pub(crate) fn accept_offer<'a>(&self, offers: impl Iterator<Item = &'a str>) -> Option<(String, DeflateParams)> {
        offers
            .filter_map(|offer| parse_element(offer).ok())
            .find_map(|(name, params)| {
                if name != NAME {
                    return None;
                }
                let offer = Parameters::parse(&params).ok()?;
                let client_max_window_bits = match offer.client_max_window_bits {
                    None => 15,
                    Some(offered) => self.client_max_window_bits.min(offered.unwrap_or(15)),
                };
                let server_max_window_bits = self
                    .server_max_window_bits
                    .min(offer.server_max_window_bits.unwrap_or(15));
                let agreed = DeflateParams {
                    server_no_context_takeover: offer.server_no_context_takeover || self.server_no_context_takeover,
                    client_no_context_takeover: offer.client_no_context_takeover || self.client_no_context_takeover,
                    server_max_window_bits,
                    client_max_window_bits,
                    level: self.level,
                    window_bits: self.window_bits,
                    threshold: self.threshold,
                };
                let mut response = String::from(NAME);
                if agreed.server_no_context_takeover {
                    response.push_str("; server_no_context_takeover");
                }
                if agreed.client_no_context_takeover {
                    response.push_str("; client_no_context_takeover");
                }
                if offer.server_max_window_bits.is_some() || server_max_window_bits < 15 {
                    response.push_str(&format!("; server_max_window_bits={server_max_window_bits}"));
                }
                if offer.client_max_window_bits.is_some() && client_max_window_bits < 15 {
                    response.push_str(&format!("; client_max_window_bits={client_max_window_bits}"));
                }
                Some((response, agreed))
            })
    }

    /// Client: checks the server's response element against what we offered.
    pub(crate) fn check_response(&self, response: &str) -> Result<DeflateParams, String> {
        let (name, params) = parse_element(response)?;
        if name != NAME {
            return Err(format!("unexpected extension {name:?}"));
        }
        let answer = Parameters::parse(&params)?;
        if self.server_no_context_takeover && !answer.server_no_context_takeover {
            return Err("server_no_context_takeover was requested but not confirmed".into());
        }
        let server_max_window_bits = match answer.server_max_window_bits {
            Some(bits) if bits <= self.server_max_window_bits => bits,
            Some(bits) => return Err(format!("server_max_window_bits={bits} exceeds our offer")),
            None if self.server_max_window_bits < 15 => {
                return Err("server_max_window_bits was requested but not confirmed".into())
            }
            None => 15,
        };
        let client_max_window_bits = match answer.client_max_window_bits {
            Some(Some(bits)) if bits <= self.client_max_window_bits => bits,
            Some(Some(bits)) => return Err(format!("client_max_window_bits={bits} exceeds our offer")),
            Some(None) => return Err("client_max_window_bits needs a value in a response".into()),
            None => self.client_max_window_bits,
        };
        Ok(DeflateParams {
            server_no_context_takeover: answer.server_no_context_takeover,
            client_no_context_takeover: answer.client_no_context_takeover || self.client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
            level: self.level,
            window_bits: self.window_bits,
            threshold: self.threshold,
        })
    }
}

/// The parameters both ends agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeflateParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: u8,
    client_max_window_bits: u8,
    level: u32,
    /// Our compressor's own window, at most the negotiated one.
    window_bits: u8,
    threshold: usize,
}

impl std::fmt::Display for DeflateParams {
    /// The agreed parameters as an extension element, every one spelled out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NAME)?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        write!(
            f,
            "; server_max_window_bits={}; client_max_window_bits={}",
            self.server_max_window_bits, self.client_max_window_bits
        )
    }
}

/// The four parameters as they appear in one offer or response element.
#[derive(Debug, Default)]
struct Parameters {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in offers only).
    client_max_window_bits: Option<Option<u8>>,
}

impl Parameters {
    /// Parses `name[=value]` pairs; unknown, repeated or malformed parameters reject the
    /// whole element (RFC 7692 §7.1).
    fn parse(params: &[Param]) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut seen = Vec::new();
        for (name, value) in params {
            if seen.contains(name) {
                return Err(format!("repeated parameter {name}"));
            }
            seen.push(name.clone());
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => parsed.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => parsed.client_no_context_takeover = true,
                ("server_max_window_bits", Some(bits)) => parsed.server_max_window_bits = Some(window_bits(bits)?),
                ("client_max_window_bits", None) => parsed.client_max_window_bits = Some(None),
                ("client_max_window_bits", Some(bits)) => {
                    parsed.client_max_window_bits = Some(Some(window_bits(bits)?))
                }
                _ => return Err(format!("invalid parameter {name}")),
            }
        }
        Ok(parsed)
    }
}

fn window_bits(value: &str) -> Result<u8, String> {
    // RFC 7692 §7.1.2: 1*DIGIT without leading zeros, 8 to 15.
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if !value.starts_with('0') => Ok(bits),
        _ => Err(format!("invalid window bits {value:?}")),
    }
}

/// An extension parameter: name and optional value.
type Param = (String, Option<String>);

/// Splits one extension element `name; p1; p2=v` into its name and parameters (values may
/// be quoted).
fn parse_element(element: &str) -> Result<(String, Vec<Param>), String> {
    let mut parts = element.split(';').map(str::trim);
    let name = parts.next().unwrap_or_default().to_ascii_lowercase();
    let params = parts
        .map(|param| match param.split_once('=') {
            Some((name, value)) => (
                name.trim().to_ascii_lowercase(),
                Some(value.trim().trim_matches('"').to_owned()),
            ),
            None => (param.to_ascii_lowercase(), None),
        })
        .collect::<Vec<_>>();
    if name.is_empty() || params.iter().any(|(name, _)| name.is_empty()) {
        return Err(format!("malformed extension {element:?}"));
    }
    Ok((name, params))
}

/// A compressor for `bits` (8 to 15) at `level`. zlib has no 8-bit window: stored blocks
/// (level 0) fit any window.
pub(crate) fn new_compressor(bits: u8, level: u32) -> Compress {
    let level = if bits < 9 {
        Compression::none()
    } else {
        Compression::new(level)
    };
    Compress::new_with_window_bits(level, false, bits.max(9))
}

/// Compresses one whole message with `compressor` (RFC 7692 §7.2.1: sync flush, trailer
/// removed), keeping its context.
pub(crate) fn compress_message(compressor: &mut Compress, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let mut consumed = 0;
    loop {
        out.reserve((payload.len() - consumed) / 2 + 64);
        let before = compressor.total_in();
        // Compression of a complete in-memory input cannot fail.
        let _ = compressor.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync);
        consumed += (compressor.total_in() - before) as usize;
        if consumed == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&TRAILER) {
        out.truncate(out.len() - TRAILER.len());
    }
    out
}

/// Compresses `payload` as a whole message from a fresh context (no context takeover) with a
/// `bits` window at `level`. The compressor is this thread's, one per (bits, level), reset
/// after each message: connections that do not keep a context hold no compressor between
/// messages (about 150 KiB each otherwise), and none is built per message.
pub(crate) fn compress_fresh(bits: u8, level: u32, payload: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESSORS: std::cell::RefCell<Vec<((u8, u32), Compress)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    COMPRESSORS.with(|compressors| {
        let mut compressors = compressors.borrow_mut();
        let index = match compressors.iter().position(|(key, _)| *key == (bits, level)) {
            Some(index) => index,
            None => {
                compressors.push(((bits, level), new_compressor(bits, level)));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].1;
        let out = compress_message(compressor, payload);
        compressor.reset();
        out
    })
}

/// The per-connection codec: a compressor for what we send and a decompressor for what we
/// receive, each created on first use.
pub(crate) struct DeflateCodec {
    params: DeflateParams,
    role: Role,
    compressor: Option<Box<Compress>>,
    decompressor: Option<Box<Decompress>>,
    /// The peer's deflate stream ended with a final block inside the current message.
    stream_ended: bool,
}

impl std::fmt::Debug for DeflateCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateCodec")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl DeflateCodec {
    /// The parameters both ends agreed on.
    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }

    pub(crate) fn new(params: DeflateParams, role: Role) -> Self {
        Self {
            params,
            role,
            compressor: None,
            decompressor: None,
            stream_ended: false,
        }
    }

    /// Whether a message of `len` bytes is worth compressing.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.params.threshold
    }

    /// (window bits, no context takeover) for what we send.
    fn outgoing(&self) -> (u8, bool) {
        let (negotiated, reset) = match self.role {
            Role::Server => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
            Role::Client => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
        };
        (negotiated.min(self.params.window_bits), reset)
    }

    /// (window bits, no context takeover) for what we receive.
    fn incoming(&self) -> (u8, bool) {
        match self.role {
            Role::Server => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
            Role::Client => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
        }
    }

    /// Compresses one whole message (RFC 7692 §7.2.1: sync flush, trailer removed).
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let (bits, reset) = self.outgoing();
        let level = self.params.level;
        if reset {
            return compress_fresh(bits, level, payload);
        }
        let compressor = self
            .compressor
            .get_or_insert_with(|| Box::new(new_compressor(bits, level)));
        compress_message(compressor, payload)
    }

    /// The (window bits, level) of what this connection sends when every message is
    /// compressed from a fresh context (`no_context_takeover` for our direction), so that
    /// the compressed form of a message can be shared by every connection with the same
    /// pair; `None` with context takeover.
    pub(crate) fn shared_form(&self) -> Option<(u8, u32)> {
        let (bits, reset) = self.outgoing();
        reset.then_some((bits, self.params.level))
    }

    /// Inflates `input` (part of a compressed message) onto `out` until the input is used up
    /// or `out` has grown by `max_out` bytes, failing once `out` would pass `limit` bytes.
    /// Returns the input bytes consumed and whether output may still be pending (then call
    /// again with the rest of the input, even if that is empty).
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
        max_out: usize,
    ) -> Result<(usize, bool), ProtocolError> {
        if self.stream_ended {
            // After a final block (BFINAL) the rest of the message is padding (RFC 7692
            // §7.2.3.4: the start of an empty stored block), ignored as zlib does.
            return Ok((input.len(), false));
        }
        let (bits, _) = self.incoming();
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, bits.max(9))));
        let start = out.len();
        let mut consumed = 0;
        loop {
            let room = limit
                .saturating_add(1)
                .saturating_sub(out.len())
                .clamp(1, (input.len() * 4).max(16 << 10))
                .min(max_out.saturating_sub(out.len() - start).max(1));
            if max_out == usize::MAX {
                out.reserve(room);
            } else {
                // A bounded step: exactly this much room, so no more output than that.
                out.reserve_exact(room);
            }
            let (before_in, before_out) = (decompressor.total_in(), out.len());
            let result = decompressor.decompress_vec(&input[consumed..], out, FlushDecompress::Sync);
            consumed += (decompressor.total_in() - before_in) as usize;
            // Passing the limit came first when the output did, even if the input then fails.
            if out.len() > limit {
                return Err(ProtocolError::MessageTooBig {
                    size: out.len() as u64,
                    limit,
                });
            }
            let status = result.map_err(|_| ProtocolError::CompressionError)?;
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok((input.len(), false));
            }
            if out.len() - start >= max_out {
                return Ok((consumed, true));
            }
            let stalled = consumed == input.len() && out.len() < out.capacity();
            let no_progress = decompressor.total_in() == before_in && out.len() == before_out;
            if stalled || no_progress {
                return Ok((consumed, false));
            }
        }
    }

    /// Ends a compressed message: feeds the trailer back and resets the context if agreed
    /// (or if the message ended the deflate stream with a final block).
    pub(crate) fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        if !self.stream_ended {
            self.inflate(&TRAILER, out, limit, usize::MAX)?;
        }
        let (_, reset) = self.incoming();
        if reset || self.stream_ended {
            self.stream_ended = false;
            if let Some(decompressor) = self.decompressor.as_mut() {
                decompressor.reset(false);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest windows: the parameters RFC 7692 assumes when none is given.
    fn full_window() -> DeflateConfig {
        let mut config = DeflateConfig::default();
        config.server_max_window_bits(15).client_max_window_bits(15);
        config
    }

    fn server_accepts(config: &DeflateConfig, offer: &str) -> Option<String> {
        config.accept_offer(offer.split(',')).map(|(response, _)| response)
    }

    #[test]
    fn negotiation_table() {
        let ours = full_window();
        // (offer, expected response)
        let cases = [
            ("permessage-deflate", Some("permessage-deflate")),
            ("permessage-deflate; client_max_window_bits", Some("permessage-deflate")),
            (
                "permessage-deflate; server_max_window_bits=10",
                Some("permessage-deflate; server_max_window_bits=10"),
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                "permessage-deflate; client_max_window_bits=9",
                Some("permessage-deflate; client_max_window_bits=9"),
            ),
            // Unknown, repeated or invalid parameters decline that offer; the next one is taken.
            (
                "permessage-deflate; foo, permessage-deflate",
                Some("permessage-deflate"),
            ),
            ("permessage-deflate; server_max_window_bits=7", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; server_max_window_bits", None),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                None,
            ),
            ("x-webkit-deflate-frame", None),
        ];
        for (offer, expected) in cases {
            assert_eq!(server_accepts(&ours, offer).as_deref(), expected, "{offer}");
        }
        let mut small = full_window();
        small.server_max_window_bits(11).client_max_window_bits(10);
        assert_eq!(
            server_accepts(&small, "permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate; server_max_window_bits=11; client_max_window_bits=10")
        );
        // Without client_max_window_bits in the offer, the server may not limit the client.
        assert_eq!(
            server_accepts(&small, "permessage-deflate").as_deref(),
            Some("permessage-deflate; server_max_window_bits=11")
        );
    }

    #[test]
    fn client_checks_the_response_against_its_offer() {
        let mut ours = full_window();
        ours.server_max_window_bits(10);
        assert_eq!(
            ours.client_offer(),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        );
        assert!(ours
            .check_response("permessage-deflate; server_max_window_bits=10")
            .is_ok());
        assert!(ours
            .check_response("permessage-deflate; server_max_window_bits=9")
            .is_ok());
        assert!(ours
            .check_response("permessage-deflate; server_max_window_bits=12")
            .is_err());
        assert!(
            ours.check_response("permessage-deflate").is_err(),
            "the limit must be confirmed"
        );
        assert!(ours
            .check_response("permessage-deflate; server_max_window_bits=10; client_max_window_bits")
            .is_err());
        assert!(ours
            .check_response("permessage-deflate; server_max_window_bits=10; x=1")
            .is_err());
        assert!(ours.check_response("other").is_err());
    }

    fn codec_pair(params_offer: &str, server: &DeflateConfig) -> (DeflateCodec, DeflateCodec) {
        let (response, agreed) = server.accept_offer(std::iter::once(params_offer)).unwrap();
        let client_params = server.check_response(&response).unwrap();
        (
            DeflateCodec::new(client_params, Role::Client),
            DeflateCodec::new(agreed, Role::Server),
        )
    }

    #[test]
    fn round_trips_with_and_without_context_takeover_and_at_every_window() {
        for offer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
        ] {
            let (mut client, mut server) = codec_pair(offer, &full_window());
            for round in 0..4 {
                let message = format!("{round} the same words again and again, the same words again ").repeat(50);
                let compressed = client.compress(message.as_bytes());
                assert!(compressed.len() < message.len() / 4 || offer.contains("=8"), "{offer}");
                let mut out = Vec::new();
                server.inflate(&compressed, &mut out, 1 << 20, usize::MAX).unwrap();
                server.finish_message(&mut out, 1 << 20).unwrap();
                assert_eq!(out, message.as_bytes(), "{offer} round {round}");
                let back = server.compress(&out);
                let mut again = Vec::new();
                client.inflate(&back, &mut again, 1 << 20, usize::MAX).unwrap();
                client.finish_message(&mut again, 1 << 20).unwrap();
                assert_eq!(again, message.as_bytes());
            }
        }
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let mut strong = full_window();
        strong.level(9);
        let (mut client, mut server) = codec_pair("permessage-deflate", &strong);
        let bomb = client.compress(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let mut out = Vec::new();
        let error = server.inflate(&bomb, &mut out, 1 << 20, usize::MAX).unwrap_err();
        assert!(matches!(error, ProtocolError::MessageTooBig { limit, .. } if limit == 1 << 20));
        assert!(
            out.capacity() <= 3 << 20,
            "allocation stays near the limit, got {}",
            out.capacity()
        );
    }

    #[test]
    fn a_final_block_ends_the_stream_and_the_next_message_starts_afresh() {
        let (_, mut server) = codec_pair("permessage-deflate", &full_window());
        let finished = |text: &[u8]| {
            let mut compressor = Compress::new_with_window_bits(Compression::default(), false, 15);
            let mut out = Vec::with_capacity(256);
            compressor.compress_vec(text, &mut out, FlushCompress::Finish).unwrap();
            out
        };
        for text in [&b"Hello"[..], b"again", b""] {
            let mut out = Vec::new();
            server.inflate(&finished(text), &mut out, 1 << 20, usize::MAX).unwrap();
            server.finish_message(&mut out, 1 << 20).unwrap();
            assert_eq!(out, text, "every message after a final block inflates in full");
        }
        // RFC 7692 §7.2.3.4: "Hello" in a final block, then the start of an empty stored block.
        let rfc_example = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut out = Vec::new();
        server.inflate(&rfc_example, &mut out, 1 << 20, usize::MAX).unwrap();
        server.finish_message(&mut out, 1 << 20).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn bounded_steps_inflate_everything_in_pieces() {
        let (mut client, mut server) = codec_pair("permessage-deflate", &full_window());
        let compressed = client.compress(&vec![7u8; 1 << 20]);
        let (mut consumed, mut total, mut steps) = (0, 0, 0);
        loop {
            let mut piece = Vec::new();
            let (used, pending) = server
                .inflate(&compressed[consumed..], &mut piece, 1 << 21, 64 << 10)
                .unwrap();
            assert!(piece.len() <= 64 << 10 && piece.capacity() <= 64 << 10, "step bounded");
            consumed += used;
            total += piece.len();
            steps += 1;
            if !pending && consumed == compressed.len() {
                break;
            }
        }
        let mut rest = Vec::new();
        server.finish_message(&mut rest, 1 << 21).unwrap();
        assert_eq!((total + rest.len(), steps >= 16), (1 << 20, true));
    }

    #[test]
    fn garbage_is_a_compression_error() {
        let (_, mut server) = codec_pair("permessage-deflate", &full_window());
        let mut out = Vec::new();
        let result = server
            .inflate(&[0xFF, 0xFF, 0xFF, 0xFF, 0x00], &mut out, 1 << 20, usize::MAX)
            .and_then(|_| server.finish_message(&mut out, 1 << 20));
        assert_eq!(result, Err(ProtocolError::CompressionError));
    }
}
