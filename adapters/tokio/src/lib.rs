//! wsflow over tokio I/O (work in progress).
