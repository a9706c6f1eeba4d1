//! Cross-crate and interoperability tests for wsflow live in `tests/`.
