//! `frame::extend_unmasked` (every loop: short, medium, the vector loop and its AVX2 build)
//! checked against RFC 6455 §5.3's definition, byte by byte, whole and in two pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsflow::frame::extend_unmasked;

fuzz_target!(|input: (Option<[u8; 4]>, u8, u8, u16, &[u8])| {
    let (mask, kept, offset, split, data) = input;
    // Kept bytes move where the loops start writing; the offset is where `data` starts in
    // the payload.
    let kept: Vec<u8> = (0..kept % 64).collect();
    let offset = usize::from(offset);
    let unmasked = |index: usize, byte: u8| mask.map_or(byte, |mask| byte ^ mask[(offset + index) % 4]);
    let expected: Vec<u8> = kept
        .iter()
        .copied()
        .chain(data.iter().enumerate().map(|(index, &byte)| unmasked(index, byte)))
        .collect();

    let mut whole = kept.clone();
    extend_unmasked(&mut whole, data, mask, offset);
    assert_eq!(whole, expected, "whole");

    let split = usize::from(split).min(data.len());
    let mut pieces = kept;
    extend_unmasked(&mut pieces, &data[..split], mask, offset);
    extend_unmasked(&mut pieces, &data[split..], mask, offset + split);
    assert_eq!(pieces, expected, "in two pieces split at {split}");
});
