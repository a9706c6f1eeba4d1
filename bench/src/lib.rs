//! What the benchmarks share: the frames the codec benchmark and the decode profile decode,
//! and a process's resident memory for the load test and the soak.

use wsflow::frame::{apply_mask, FrameHeader, OpCode, MAX_HEADER_LEN};

/// Frames per round: about 1 MiB of payload, at least one frame, at most 4096.
pub fn frame_count(size: usize) -> usize {
    ((1 << 20) / size).clamp(1, 4096)
}

/// `frame_count(size)` masked binary frames of `size` payload bytes, as a client sends
/// them (a different masking key for each).
pub fn masked_frames(size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for index in 0..frame_count(size) {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some([0x11, 0x22, 0x33, index as u8]),
            payload_len: size as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let len = header.encode(&mut head);
        out.extend_from_slice(&head[..len]);
        let start = out.len();
        out.extend((0..size).map(|i| i as u8));
        apply_mask(&mut out[start..], header.mask.unwrap(), 0);
    }
    out
}

/// The resident memory (VmRSS) of process `pid`, in bytes, from `/proc/PID/status`.
pub fn resident_bytes(pid: u32) -> std::io::Result<f64> {
    status_bytes(pid, "VmRSS:")
}

/// The anonymous resident memory (RssAnon: heap, stacks; not the binary's code and data
/// pages, which a server faults in as it first runs a path) of process `pid`, in bytes.
pub fn anonymous_resident_bytes(pid: u32) -> std::io::Result<f64> {
    status_bytes(pid, "RssAnon:")
}

fn status_bytes(pid: u32, field: &str) -> std::io::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| kib * 1024.0)
        .ok_or_else(|| std::io::Error::other(format!("no {field} for process {pid}")))
}
