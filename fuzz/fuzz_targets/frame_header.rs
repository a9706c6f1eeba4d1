//! `FrameHeader::decode` on arbitrary bytes, checked against RFC 6455 §5.2 directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsflow::frame::{FrameHeader, FrameHeaderError, OpCode, MAX_HEADER_LEN};

/// The length of the header that `bytes` starts, from its first two bytes (§5.2).
fn header_len(first_two: [u8; 2]) -> usize {
    let length_bytes = match first_two[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + length_bytes + mask_bytes
}

fuzz_target!(|data: &[u8]| {
    let result = FrameHeader::decode(data);
    let needed = match data {
        [first, second, ..] => header_len([*first, *second]),
        _ => 2,
    };
    // A 64-bit length with its top bit set is an error as soon as the length has arrived.
    let bad_length = data.len() > 2 && data[1] & 0x7F == 127 && data[2] & 0x80 != 0;
    let decided_at = if bad_length { 10 } else { needed };
    // Every prefix shorter than that needs more bytes.
    for short in 0..decided_at.min(data.len() + 1) {
        assert_eq!(FrameHeader::decode(&data[..short]), Ok(None), "prefix of {short} bytes");
    }
    let (header, len) = match result {
        Ok(None) => return assert!(data.len() < decided_at, "a whole header was not decoded"),
        Err(FrameHeaderError::LengthTopBitSet) => return assert!(bad_length && data.len() >= 10),
        Ok(Some(decoded)) => decoded,
    };
    assert!(!bad_length);
    assert_eq!(len, needed);
    assert!(len <= data.len() && len <= MAX_HEADER_LEN);
    // Nothing past the header was read: the header alone decodes the same.
    assert_eq!(FrameHeader::decode(&data[..len]), Ok(Some((header, len))));
    assert_eq!(header.fin, data[0] & 0x80 != 0);
    assert_eq!(header.rsv, (data[0] >> 4) & 0x07);
    assert_eq!(header.opcode, OpCode::from_bits(data[0]));
    assert_eq!(header.opcode.bits(), data[0] & 0x0F);
    let mask = (data[1] & 0x80 != 0).then(|| [data[len - 4], data[len - 3], data[len - 2], data[len - 1]]);
    assert_eq!(header.mask, mask);
    assert!(header.payload_len < 1 << 63);

    let mut out = [0u8; MAX_HEADER_LEN];
    let written = header.encode(&mut out);
    let minimal = match data[1] & 0x7F {
        126 => (126..=0xFFFF).contains(&header.payload_len),
        127 => header.payload_len > 0xFFFF,
        _ => true,
    };
    if minimal {
        assert_eq!(&out[..written], &data[..len], "re-encoding differs");
    } else {
        // A liberal receiver accepts a longer length than needed; ours is minimal.
        assert!(written < len);
        assert_eq!(FrameHeader::decode(&out[..written]), Ok(Some((header, written))));
    }
});
