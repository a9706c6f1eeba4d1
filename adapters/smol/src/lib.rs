//! wsflow over smol I/O (work in progress).
