//! Incremental UTF-8 validation across frame and fragment boundaries.
//!
//! Text arrives in pieces: a code point may straddle two frames or two reads. The validator
//! keeps at most three bytes of an unfinished code point and fails on the first byte that
//! can never be part of valid UTF-8, so a peer cannot make us buffer a bad message before
//! we notice (Autobahn 6.4.*: fail fast).

/// Validates a UTF-8 stream fed in arbitrary pieces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of a code point whose remaining bytes have not arrived yet.
    pending: [u8; 4],
    pending_len: u8,
}

/// The stream is not UTF-8, whatever bytes follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for InvalidUtf8 {}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the stream.
    ///
    /// # Errors
    /// [`InvalidUtf8`] as soon as the bytes seen so far cannot start a valid stream. On
    /// error the validator is left as it was before the call.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        let mut state = *self;
        if state.pending_len > 0 {
            // Complete the code point that straddles the boundary, one byte at a time.
            while state.pending_len > 0 {
                let Some((&byte, rest)) = data.split_first() else {
                    *self = state;
                    return Ok(());
                };
                state.pending[usize::from(state.pending_len)] = byte;
                state.pending_len += 1;
                data = rest;
                let pending = &state.pending[..usize::from(state.pending_len)];
                match simdutf8::compat::from_utf8(pending) {
                    Ok(_) => state.pending_len = 0,
                    Err(error) if error.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) if state.pending_len == 4 => return Err(InvalidUtf8),
                    Err(_) => {}
                }
            }
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => {}
            Err(error) if error.error_len().is_some() => return Err(InvalidUtf8),
            Err(error) => {
                let tail = &data[error.valid_up_to()..];
                state.pending[..tail.len()].copy_from_slice(tail);
                state.pending_len = tail.len() as u8;
            }
        }
        *self = state;
        Ok(())
    }

    /// Whether the stream may end here (no code point left unfinished).
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Checks that the stream may end here.
    ///
    /// # Errors
    /// [`InvalidUtf8`] when a code point is unfinished.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.is_complete() {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn validate_in_pieces(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut validator = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, data.len());
            validator.feed(&data[start..cut])?;
            start = cut;
        }
        validator.feed(&data[start..])?;
        validator.finish()
    }

    fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<String>().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..40),
            (any::<String>(), any::<u8>(), 0usize..40).prop_map(|(text, byte, at)| {
                let mut bytes = text.into_bytes();
                let at = at.min(bytes.len());
                bytes.insert(at, byte);
                bytes
            }),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_std_on_any_split(data in utf8ish(), mut cuts in proptest::collection::vec(0usize..64, 0..6)) {
            cuts.sort_unstable();
            prop_assert_eq!(validate_in_pieces(&data, &cuts).is_ok(), std::str::from_utf8(&data).is_ok());
        }

        #[test]
        fn fails_fast_at_the_first_impossible_byte(data in utf8ish()) {
            // Feeding byte by byte fails exactly when the prefix can no longer be extended to UTF-8.
            let mut validator = Utf8Validator::new();
            for (index, byte) in data.iter().enumerate() {
                let prefix_ok = match std::str::from_utf8(&data[..=index]) {
                    Ok(_) => true,
                    Err(error) => error.error_len().is_none(),
                };
                prop_assert_eq!(validator.feed(&[*byte]).is_ok(), prefix_ok);
                if !prefix_ok {
                    break;
                }
            }
        }
    }

    #[test]
    fn known_cases() {
        let euro = "€".as_bytes();
        let mut validator = Utf8Validator::new();
        validator.feed(&euro[..1]).unwrap();
        assert!(!validator.is_complete());
        validator.feed(&euro[1..]).unwrap();
        assert!(validator.is_complete());
        // A surrogate half fails on its second byte.
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(&[0xED, 0xA0]), Err(InvalidUtf8));
        // A code point above U+10FFFF fails on the second byte.
        assert_eq!(Utf8Validator::new().feed(&[0xF4, 0x90]), Err(InvalidUtf8));
        assert_eq!(Utf8Validator::new().feed(&[0xC0]), Err(InvalidUtf8));
    }
}
