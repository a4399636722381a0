//! `scripts/setup.sh` installs what a command needs: the steps each purpose selects, and
//! the header every step needs for the selection and its progress line.
#![allow(clippy::expect_used)] // a test that cannot read its inputs should panic loudly

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .parent()
    .expect("examples/ has a parent")
    .to_path_buf()
}

/// The steps `scripts/setup.sh --dry-run ARGS` would run.
fn plan(args: &[&str]) -> Vec<String> {
    let out = Command::new("bash")
        .arg(root().join("scripts/setup.sh"))
        .arg("--dry-run")
        .args(args)
        .env_remove("AURA_SETUP_DOCKER")
        .env_remove("AURA_SETUP_FORGE")
        .output()
        .expect("run setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_demo_gets_the_model_and_no_docker() {
    let demo = plan(&["demo"]);
    assert!(demo.iter().any(|s| s == "30-model"), "{demo:?}");
    assert!(!demo.iter().any(|s| s.contains("docker")), "{demo:?}");
    assert!(!demo.iter().any(|s| s.contains("forge")), "{demo:?}");
}

#[test]
fn the_tests_get_docker_and_the_forge_only_on_request() {
    let test = plan(&["test"]);
    assert_eq!(plan(&[]), test, "no purpose means `test`");
    assert!(test.iter().any(|s| s == "20-docker"), "{test:?}");
    assert!(!test.iter().any(|s| s.contains("forge")), "{test:?}");
    assert_eq!(plan(&["forge"]), vec!["40-forge".to_string()]);
    assert_eq!(plan(&["docker"]), vec!["20-docker".to_string()]);
}

#[test]
fn every_step_names_its_purposes_and_first_run_time() {
    let dir = root().join("scripts/setup.d");
    let mut steps = 0;
    for entry in std::fs::read_dir(&dir).expect("read setup.d").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "sh") {
            continue;
        }
        steps += 1;
        let text = std::fs::read_to_string(&path).expect("read a step");
        for key in ["# needed-by: ", "# what: ", "# first-run: "] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(key) && l.len() > key.len()),
                "{} lacks a `{key}` line",
                path.display()
            );
        }
        // Every step is selected by some purpose, or it would never run.
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let all = plan(&["test", "docker", "forge", "demo"]);
        assert!(all.iter().any(|s| s == name), "{name} is never run");
    }
    assert!(steps >= 5, "found {steps} steps in {}", dir.display());
}
