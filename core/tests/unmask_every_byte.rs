//! Every byte `extend_unmasked` claims (set_len) was written, for every length,
//! kept length, spare room and offset; spare room pre-filled with two sentinels, so that a
//! byte left unwritten shows as a mismatch in at least one run.

use wsflow::frame::extend_unmasked;

#[test]
fn extend_unmasked_writes_every_byte_it_claims() {
    let masks = [[0u8; 4], [0x12, 0x34, 0x56, 0x78], [0xff, 0x00, 0xa5, 0x5a]];
    let data: Vec<u8> = (0..1100u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for len in (0..=700).chain([1023, 1024, 1025, 1099]) {
        let src = &data[..len];
        for kept in [0usize, 1, 3, 4, 5, 31, 32, 33, 63] {
            for room in [0usize, 7, 2000] {
                for offset in [0, 1, 3] {
                    for mask in masks {
                        let expected: Vec<u8> = (0..kept as u8)
                            .chain(src.iter().enumerate().map(|(i, b)| b ^ mask[(offset + i) % 4]))
                            .collect();
                        for sentinel in [0x00u8, 0xff] {
                            let mut dst: Vec<u8> = Vec::with_capacity(kept + room);
                            // Poison the whole capacity, then keep only `kept` bytes.
                            dst.resize(dst.capacity(), sentinel);
                            dst.truncate(0);
                            dst.extend(0..kept as u8);
                            extend_unmasked(&mut dst, src, Some(mask), offset);
                            assert_eq!(dst.len(), kept + len);
                            assert!(dst.capacity() >= dst.len());
                            assert!(
                                dst == expected,
                                "len {len} kept {kept} room {room} offset {offset} mask {mask:?} sentinel {sentinel}"
                            );
                        }
                    }
                }
            }
        }
    }
}
