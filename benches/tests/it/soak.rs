//! The soak's one-minute tier, and its leak check shown to find what it looks for.

use std::path::Path;
use std::process::Command;

use aura_benches::{leak_check, ProcessStats};

/// CI's tier of the documented ten-minute soak: a minute of mixed load on the real
/// gateway, SSE clients hanging up and the CLI's one-shot mode included, with no growth
/// in descriptors, threads or children and no unreaped child.
#[test]
fn a_one_minute_soak_leaks_nothing() {
    let soak = Path::new(env!("CARGO_BIN_EXE_soak"));
    // The CLI is aura-examples' binary: the workspace's test build puts it beside ours.
    let cli = soak.with_file_name("aura");
    assert!(
        cli.is_file(),
        "{} is missing: build it first (cargo build -p aura-examples --bin aura)",
        cli.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("soak.csv");
    let out = Command::new(soak)
        .args([
            "--minutes",
            "1",
            "--objects",
            "300",
            "--methods",
            "300",
            "--clients",
            "3",
        ])
        .args([
            "--sse-clients",
            "2",
            "--cli-every-s",
            "1",
            "--check",
            "--cli",
        ])
        .arg(&cli)
        .arg("--csv")
        .arg(&csv)
        .output()
        .expect("run soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("check: ok"), "{stdout}");
    assert!(stdout.contains(" errors=0 "), "{stdout}");
    let rows = std::fs::read_to_string(&csv).expect("the CSV");
    assert!(rows.lines().count() > 50, "{rows}");
    assert!(dir.path().join("soak.png").is_file());
    assert!(dir.path().join("soak-resources.png").is_file());
}

fn run(fds: impl Fn(usize) -> u64, threads: u64) -> Vec<(f64, ProcessStats)> {
    (0..60)
        .map(|t| {
            let stats = ProcessStats {
                rss_kib: 50_000,
                fds: fds(t),
                threads,
                children: 2,
                zombies: 0,
            };
            (t as f64, stats)
        })
        .collect()
}

/// A flat run passes; a descriptor leak, a thread that grew and an unreaped child fail.
#[test]
fn the_leak_check_finds_growth_and_zombies() {
    let settled = ProcessStats {
        children: 2,
        ..ProcessStats::default()
    };
    let flat = run(|t| 40 + (t % 3) as u64, 30);
    assert_eq!(leak_check(&flat, &settled), Ok(()));

    let leaking = run(|t| 40 + t as u64, 30);
    let why = leak_check(&leaking, &settled).expect_err("a leak of one descriptor a second");
    assert!(why.contains("descriptors grew"), "{why}");

    let mut threads = run(|_| 40, 30);
    for (_, s) in threads.iter_mut().skip(50) {
        s.threads = 50;
    }
    let why = leak_check(&threads, &settled).expect_err("threads grew");
    assert!(why.contains("threads grew"), "{why}");

    let zombie = ProcessStats {
        zombies: 1,
        ..settled
    };
    let why = leak_check(&flat, &zombie).expect_err("an unreaped child");
    assert!(why.contains("unreaped"), "{why}");

    assert!(
        leak_check(&flat[..12], &settled).is_err(),
        "too short to judge"
    );
}
