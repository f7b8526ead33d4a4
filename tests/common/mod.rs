//! Helpers shared by the integration tests (each test file is its own crate: `mod common;`).

/// Runs the calling test alone in a child process (for thread, fd and RSS figures that
/// parallel tests would disturb); returns true inside that child. The child's output is
/// printed by the parent, so its figures show with `--nocapture`.
pub fn isolated(name: &str) -> bool {
    if std::env::var("QPROM_TEST_ISOLATED").as_deref() == Ok(name) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env("QPROM_TEST_ISOLATED", name)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "child run of {name} failed:\n{text}");
    print!("{text}");
    false
}
