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

/// The model step leaves a real file in the user's data directory, so a program outside
/// any checkout keeps its model after the checkout that installed it is deleted (a
/// symbolic link, as an older setup made, dangled then, and is replaced).
#[test]
fn the_users_model_outlives_its_checkout() {
    const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let tmp = tempfile::tempdir().expect("tempdir");
    let checkout = tmp.path().join("checkout");
    let user_models = tmp.path().join("data/aura/models");
    for dir in [
        checkout.join("scripts/lib"),
        checkout.join("models"),
        checkout.join(".venv/bin"),
        user_models.clone(),
    ] {
        std::fs::create_dir_all(&dir).expect("mkdir");
    }
    // This test is about the model's place, not Debian's packages or the venv.
    std::fs::write(
        checkout.join("scripts/lib/apt.sh"),
        "apt_install_missing() { :; }\n",
    )
    .expect("apt stub");
    std::os::unix::fs::symlink("/usr/bin/python3", checkout.join(".venv/bin/python"))
        .expect("venv python");
    // A model already fetched and verified (its `.ok` newer than the file).
    std::fs::write(checkout.join("models").join(MODEL), b"a verified model").expect("model");
    let ok = checkout.join("models").join(format!("{MODEL}.ok"));
    std::fs::write(&ok, b"").expect("ok");
    let later = Command::new("touch")
        .args(["-d", "2100-01-01"])
        .arg(&ok)
        .status()
        .expect("touch");
    assert!(later.success());
    // What an older setup left: a link into a checkout that is gone.
    std::os::unix::fs::symlink(tmp.path().join("gone").join(MODEL), user_models.join(MODEL))
        .expect("dangling link");

    let out = Command::new("bash")
        .arg(root().join("scripts/setup.d/30-model.sh"))
        .current_dir(&checkout)
        .env("XDG_DATA_HOME", tmp.path().join("data"))
        .env_remove("AURA_FETCH_GEMMA")
        .output()
        .expect("run 30-model.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let user_model = user_models.join(MODEL);
    let meta = std::fs::symlink_metadata(&user_model).expect("the user's model");
    assert!(meta.is_file(), "{user_model:?} is a file, not a link");
    std::fs::remove_dir_all(&checkout).expect("delete the checkout");
    assert_eq!(
        std::fs::read(&user_model).expect("still there"),
        b"a verified model"
    );
}

/// CI's pruning of the shared target directory keeps the newest copies of each library
/// and build-script directory and drops the older ones, and leaves other crates alone.
#[test]
fn pruning_a_shared_target_keeps_the_newest_copies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let deps = tmp.path().join("debug/deps");
    let build = tmp.path().join("debug/build");
    std::fs::create_dir_all(&deps).expect("deps");
    std::fs::create_dir_all(&build).expect("build");
    // `age` hours old.
    let touch = |path: &std::path::Path, age: u32| {
        let ok = Command::new("touch")
            .args(["-d", &format!("{age} hours ago")])
            .arg(path)
            .status()
            .expect("touch");
        assert!(ok.success());
    };
    for age in 1..=5 {
        let lib = deps.join(format!("libllama_cpp_sys_2-00000000000000a{age}.rlib"));
        std::fs::write(&lib, b"rlib").expect("rlib");
        touch(&lib, age);
        let dir = build.join(format!("llama-cpp-sys-2-00000000000000b{age}"));
        std::fs::create_dir(&dir).expect("build dir");
        touch(&dir, age);
        let dir = build.join(format!("llama-cpp-sys-2-00000000000000c{age}"));
        std::fs::create_dir(&dir).expect("build dir");
        touch(&dir, age);
    }
    let only = deps.join("libserde-0123456789abcdef.rlib");
    std::fs::write(&only, b"rlib").expect("rlib");
    touch(&only, 100);
    let old_test = deps.join("it-0123456789abcdef");
    std::fs::write(&old_test, b"exe").expect("exe");
    touch(&old_test, 2);

    let out = Command::new("bash")
        .arg(root().join("scripts/lib/prune-target.sh"))
        .arg(tmp.path())
        .arg("--force")
        .output()
        .expect("run prune-target.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let names = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&deps),
        [
            "libllama_cpp_sys_2-00000000000000a1.rlib",
            "libllama_cpp_sys_2-00000000000000a2.rlib",
            "libllama_cpp_sys_2-00000000000000a3.rlib",
            "libserde-0123456789abcdef.rlib",
        ]
    );
    assert_eq!(
        names(&build),
        [
            "llama-cpp-sys-2-00000000000000b1",
            "llama-cpp-sys-2-00000000000000b2",
            "llama-cpp-sys-2-00000000000000b3",
            "llama-cpp-sys-2-00000000000000c1",
            "llama-cpp-sys-2-00000000000000c2",
            "llama-cpp-sys-2-00000000000000c3",
        ]
    );
}
