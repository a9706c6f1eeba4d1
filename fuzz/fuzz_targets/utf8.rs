//! Differential: `Utf8Validator` fed the input in arbitrary pieces agrees with
//! `std::str::from_utf8` on every prefix, and fails at the first impossible piece for good.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsflow::utf8::Utf8Validator;
use wsflow_fuzz::chunks;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Piece lengths, cycled.
    sizes: [u8; 4],
    data: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut validator = Utf8Validator::new();
    let mut fed = 0;
    let mut failed = false;
    for piece in chunks(input.data, &input.sizes) {
        let prefix = &input.data[..fed + piece.len()];
        let std_result = std::str::from_utf8(prefix);
        // A prefix can still become UTF-8 unless it holds a byte no continuation can fix.
        let extendable = std_result.map_or_else(|error| error.error_len().is_none(), |_| true);
        let before = validator;
        if validator.feed(piece).is_ok() {
            assert!(extendable, "accepted a prefix that can never be UTF-8");
            assert_eq!(
                validator.is_complete(),
                std_result.is_ok(),
                "completeness differs from std"
            );
            fed += piece.len();
            continue;
        }
        assert!(!extendable, "rejected a prefix that can still be UTF-8");
        assert_eq!(validator, before, "a failed feed changed the validator");
        // Once invalid, it stays invalid: the same bytes fail again, whatever follows them.
        assert!(validator.feed(piece).is_err());
        assert!(validator.feed(&input.data[fed..]).is_err());
        failed = true;
        break;
    }
    let valid = !failed && validator.finish().is_ok();
    assert_eq!(
        valid,
        std::str::from_utf8(input.data).is_ok(),
        "validity differs from std"
    );
});
