//! Each frontend's `--help` starts with its own one-line description (its doc comment),
//! not the crate's shared one.
#![allow(clippy::expect_used)] // a test that cannot read its inputs should panic loudly

use std::process::Command;

fn first_line(bin: &str) -> String {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{bin} --help failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn each_binary_describes_itself() {
    let crate_description = env!("CARGO_PKG_DESCRIPTION");
    let cases = [
        (env!("CARGO_BIN_EXE_gateway"), "Serve AURA's HTTP API"),
        (env!("CARGO_BIN_EXE_aura"), "Talk to AURA's objects"),
        (env!("CARGO_BIN_EXE_genesis"), "Initialise AURA"),
    ];
    for (bin, start) in cases {
        let line = first_line(bin);
        assert!(line.starts_with(start), "{bin}: {line:?}");
        assert_ne!(line, crate_description, "{bin}");
    }
}
