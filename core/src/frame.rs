//! Frame headers (RFC 6455 §5.2) and payload masking (§5.3).
//!
//! [`FrameHeader::decode`] is incremental: it returns `Ok(None)` until the whole header has
//! arrived, never reads past it and never allocates.

use std::fmt;
use std::mem::MaybeUninit;

/// The most bytes a frame header can take: 2 fixed, 8 for a 64-bit length, 4 for the mask.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (RFC 6455 §5.2), raw values 0x0-0xF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
    /// 0x3-0x7 and 0xB-0xF: reserved, a protocol error when received.
    Reserved(u8),
}

impl OpCode {
    /// The opcode for the low four bits of `value`.
    pub fn from_bits(value: u8) -> Self {
        match value & 0x0F {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => Self::Reserved(other),
        }
    }

    /// The four-bit wire value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
            Self::Reserved(value) => value & 0x0F,
        }
    }

    /// Control frames (close, ping, pong and reserved 0xB-0xF) have the top opcode bit set.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1-RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// A header that can never become valid, whatever bytes follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameHeaderError {
    /// A 64-bit payload length with its most significant bit set (§5.2).
    LengthTopBitSet,
}

impl fmt::Display for FrameHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthTopBitSet => f.write_str("64-bit payload length has its most significant bit set"),
        }
    }
}

impl std::error::Error for FrameHeaderError {}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, `Ok(Some((header, header_len)))` when
    /// the header is complete.
    ///
    /// # Errors
    /// A length that no continuation can make valid.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, FrameHeaderError> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        let masked = second & 0x80 != 0;
        let (payload_len, len_bytes) = match second & 0x7F {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 2)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut word = [0u8; 8];
                word.copy_from_slice(bytes);
                let len = u64::from_be_bytes(word);
                if len >> 63 != 0 {
                    return Err(FrameHeaderError::LengthTopBitSet);
                }
                (len, 8)
            }
            short => (u64::from(short), 0),
        };
        let mask_at = 2 + len_bytes;
        let (mask, header_len) = if masked {
            let Some(bytes) = buf.get(mask_at..mask_at + 4) else {
                return Ok(None);
            };
            (Some([bytes[0], bytes[1], bytes[2], bytes[3]]), mask_at + 4)
        } else {
            (None, mask_at)
        };
        let header = Self {
            fin: first & 0x80 != 0,
            rsv: (first >> 4) & 0x07,
            opcode: OpCode::from_bits(first),
            mask,
            payload_len,
        };
        Ok(Some((header, header_len)))
    }

    /// Encodes the header into `out`, returning the number of bytes written (2 to 14).
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        match self.payload_len {
            short @ 0..=125 => out[1] = mask_bit | short as u8,
            medium @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(medium as u16).to_be_bytes());
                len = 4;
            }
            long => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&long.to_be_bytes());
                len = 10;
            }
        }
        if let Some(mask) = self.mask {
            out[len..len + 4].copy_from_slice(&mask);
            len += 4;
        }
        len
    }
}

/// XORs `buf` with `mask`, where `buf` starts `offset` bytes into the masked payload.
///
/// Works a 64-bit word at a time in safe code the compiler vectorizes.
#[inline]
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask = mask_from(mask, offset);
    let mask_word = mask_word(mask);
    let mut words = buf.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ mask_word).to_ne_bytes());
    }
    for (index, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[index % 4];
    }
}

/// The masking key as it applies from `offset` bytes into the payload: it starts with the
/// key's byte `offset % 4`, a rotation of the key's little-endian word (no branch, no
/// call; `<[u8]>::rotate_left` costs far more: bench/README.md).
#[inline(always)]
fn mask_from(mask: [u8; 4], offset: usize) -> [u8; 4] {
    u32::from_le_bytes(mask)
        .rotate_right(8 * (offset % 4) as u32)
        .to_le_bytes()
}

/// `mask` twice over, for unmasking eight bytes at a time.
#[inline(always)]
fn mask_word(mask: [u8; 4]) -> u64 {
    let half = u64::from(u32::from_ne_bytes(mask));
    half | half << 32
}

/// Appends `src` to `dst`, unmasking it when `mask` is set (`offset`: where `src` starts in
/// the payload), in one pass. Long payloads go 4-byte words at a time, XORed on their way
/// into `dst`, which the compiler turns into a vector loop as fast as a plain copy
/// (bench/: decode). Short ones (the common small messages) skip that loop's set-up.
#[inline(always)]
pub fn extend_unmasked(dst: &mut Vec<u8>, src: &[u8], mask: Option<[u8; 4]>, offset: usize) {
    let Some(mask) = mask else {
        return dst.extend_from_slice(src);
    };
    let mask = mask_from(mask, offset);
    match src.len() {
        // Eight bytes at a time, without calls or set-up (bench/README.md has the figures).
        0..=32 => extend_unmasked_tiny(dst, src, mask),
        // The word loop without the AVX2 check, whose set-up costs more than it gains here.
        33..=128 => extend_unmasked_words(dst, src, mask),
        _ => extend_unmasked_long(dst, src, mask),
    }
}

/// Appends `src` unmasked to `dst`, eight bytes at a time (each append checks the room,
/// which costs more than a call to `memcpy` past a few words).
#[inline(always)]
fn extend_unmasked_tiny(dst: &mut Vec<u8>, src: &[u8], mask: [u8; 4]) {
    let mask_word = mask_word(mask);
    let (words, tail) = src.as_chunks::<8>();
    for word in words {
        dst.extend_from_slice(&(u64::from_ne_bytes(*word) ^ mask_word).to_ne_bytes());
    }
    let (quads, bytes) = tail.as_chunks::<4>();
    for quad in quads {
        dst.extend_from_slice(&(u32::from_ne_bytes(*quad) ^ u32::from_ne_bytes(mask)).to_ne_bytes());
    }
    for (byte, mask) in bytes.iter().zip(mask) {
        dst.push(byte ^ mask);
    }
}

/// The vector loop for long payloads, with AVX2 where the CPU has it: x86-64 builds target
/// SSE2 unless told otherwise, and AVX2's loop is 10-15 % faster on 64 KiB and 1 MiB frames
/// (bench/: decode).
#[inline]
fn extend_unmasked_long(dst: &mut Vec<u8>, src: &[u8], mask: [u8; 4]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: AVX2, the one thing `extend_unmasked_avx2` requires beyond a safe
        // function's contract, is there (checked just above).
        unsafe {
            extend_unmasked_avx2(dst, src, mask);
        }
        return;
    }
    extend_unmasked_words(dst, src, mask);
}

/// [`extend_unmasked_words`] compiled for AVX2. It must be inlined here to be: a call out
/// (such as `Vec::extend`'s loop) runs at the baseline's width.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn extend_unmasked_avx2(dst: &mut Vec<u8>, src: &[u8], mask: [u8; 4]) {
    extend_unmasked_words(dst, src, mask);
}

/// Appends `src` unmasked to `dst`, 4-byte words at a time, written straight into `dst`'s
/// spare room: a loop with no call in it, which the compiler turns into a vector loop.
#[inline(always)]
fn extend_unmasked_words(dst: &mut Vec<u8>, src: &[u8], mask: [u8; 4]) {
    let start = dst.len();
    dst.reserve(src.len());
    let room = &mut dst.spare_capacity_mut()[..src.len()];
    let mask_word = u32::from_ne_bytes(mask);
    let (room_words, room_tail) = room.as_chunks_mut::<4>();
    let (src_words, src_tail) = src.as_chunks::<4>();
    for (room, word) in room_words.iter_mut().zip(src_words) {
        *room = (u32::from_ne_bytes(*word) ^ mask_word)
            .to_ne_bytes()
            .map(MaybeUninit::new);
    }
    for ((room, byte), mask) in room_tail.iter_mut().zip(src_tail).zip(mask) {
        room.write(byte ^ mask);
    }
    #[allow(unsafe_code)]
    // SAFETY: `room` is `dst`'s spare capacity from `start` on, `src.len()` bytes long,
    // and the two loops above wrote every byte of it: the words, then the 0-3 tail bytes
    // (`as_chunks` splits both slices at the same place, as they have the same length).
    unsafe {
        dst.set_len(start + src.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = FrameHeader> {
        (
            any::<bool>(),
            0u8..8,
            0u8..16,
            proptest::option::of(any::<[u8; 4]>()),
            prop_oneof![0u64..126, 126u64..=0xFFFF, 0x1_0000u64..(1 << 63)],
        )
            .prop_map(|(fin, rsv, op, mask, payload_len)| FrameHeader {
                fin,
                rsv,
                opcode: OpCode::from_bits(op),
                mask,
                payload_len,
            })
    }

    proptest! {
        #[test]
        fn header_roundtrips_and_is_incremental(header in arb_header()) {
            let mut out = [0u8; MAX_HEADER_LEN];
            let len = header.encode(&mut out);
            prop_assert_eq!(FrameHeader::decode(&out[..len]), Ok(Some((header, len))));
            for short in 0..len {
                prop_assert_eq!(FrameHeader::decode(&out[..short]), Ok(None));
            }
        }

        #[test]
        fn mask_matches_bytewise_definition(data in proptest::collection::vec(any::<u8>(), 0..100), mask in any::<[u8; 4]>(), offset in 0usize..8) {
            let mut fast = data.clone();
            apply_mask(&mut fast, mask, offset);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[(i + offset) % 4]).collect();
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn extend_unmasked_equals_copy_then_mask(
            kept in proptest::collection::vec(any::<u8>(), 0..8),
            // All three loops of extend_unmasked: up to 32, 128, and longer.
            data in proptest::collection::vec(any::<u8>(), 0..300),
            mask in proptest::option::of(any::<[u8; 4]>()),
            offset in 0usize..8,
        ) {
            let mut fused = kept.clone();
            extend_unmasked(&mut fused, &data, mask, offset);
            let mut expected = data.clone();
            if let Some(mask) = mask {
                apply_mask(&mut expected, mask, offset);
            }
            prop_assert_eq!(&fused[..kept.len()], &kept[..]);
            prop_assert_eq!(&fused[kept.len()..], &expected[..]);
        }

        #[test]
        fn both_long_loops_equal_masking_byte_by_byte(
            // Kept bytes and spare room move where the loops start writing.
            kept in proptest::collection::vec(any::<u8>(), 0..70),
            room in 0usize..70,
            // Several rounds of the widest vector loop (4 x 32 bytes), and every tail.
            data in proptest::collection::vec(any::<u8>(), 0..700),
            mask in any::<[u8; 4]>(),
        ) {
            let expected: Vec<u8> = kept
                .iter()
                .copied()
                .chain(data.iter().zip(mask.iter().cycle()).map(|(byte, mask)| byte ^ mask))
                .collect();
            // The baseline loop, and the one this CPU runs (AVX2 on most x86-64).
            for extend in [extend_unmasked_words, extend_unmasked_long] {
                let mut dst = Vec::with_capacity(kept.len() + room);
                dst.extend_from_slice(&kept);
                extend(&mut dst, &data, mask);
                prop_assert_eq!(&dst, &expected);
            }
        }

        #[test]
        fn masking_in_pieces_equals_masking_whole(data in proptest::collection::vec(any::<u8>(), 0..64), split in 0usize..64, mask in any::<[u8; 4]>()) {
            let split = split.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, mask, 0);
            let mut pieces = data;
            let (head, tail) = pieces.split_at_mut(split);
            apply_mask(head, mask, 0);
            apply_mask(tail, mask, split);
            prop_assert_eq!(whole, pieces);
        }
    }

    #[test]
    fn rejects_top_bit_of_64_bit_length() {
        let mut frame = vec![0x82, 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(FrameHeader::decode(&frame), Err(FrameHeaderError::LengthTopBitSet));
        // Non-minimal encodings are accepted (liberal receiver): 5 bytes in a 16-bit length.
        let (header, len) = FrameHeader::decode(&[0x82, 126, 0, 5]).unwrap().unwrap();
        assert_eq!((header.payload_len, len), (5, 4));
    }

    #[test]
    fn rfc_examples_decode() {
        // §5.7: a single-frame masked text message "Hello".
        let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (header, len) = FrameHeader::decode(&frame).unwrap().unwrap();
        assert_eq!(len, 6);
        assert!(header.fin);
        assert_eq!(header.opcode, OpCode::Text);
        let mut payload = frame[len..].to_vec();
        apply_mask(&mut payload, header.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // §5.7: 256 bytes binary in a single unmasked frame uses the 16-bit length.
        let (header, len) = FrameHeader::decode(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((header.payload_len, len), (256, 4));
    }
}
