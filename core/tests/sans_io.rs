//! The core stays sans-IO: no sockets, clocks, threads or OS randomness in its code
//! (doc comments and doctests, which run as tests, may use them).

use std::path::Path;

#[test]
fn core_sources_do_no_io() {
    let forbidden = [
        "std::net",
        "Instant::now",
        "SystemTime",
        "std::thread",
        "thread::spawn",
        "getrandom",
        "std::fs",
        "std::process",
    ];
    let mut offenders = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if let Some(word) = forbidden.iter().find(|word| code.contains(*word)) {
                    offenders.push(format!("{}:{}: {word}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "I/O in the sans-IO core:\n{}",
        offenders.join("\n")
    );
}
