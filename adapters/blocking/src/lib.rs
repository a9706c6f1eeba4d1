//! wsflow over blocking I/O (work in progress).
