//! The `aura` CLI and `genesis` driven as a user would: real processes against a real
//! gateway (started in the test on 127.0.0.1:0 over SQLite in memory, the jail and a
//! scripted model).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use aura_cognition::{CascadeMode, ScriptedModel};
use aura_core::{Config, Runtime};
use aura_gateway::{Gateway, GatewayConfig};
use serde_json::json;

const TOKEN: &str = "cli-test-token";
const FIB: &str = "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n";

/// Starts a gateway and returns its URL.
async fn gateway() -> String {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut config = Config::default();
    config.cascade_mode = Some(CascadeMode::Single);
    // The scripted model is an oracle: one candidate that passes its own asserts is enough.
    config.learn_agreement = 1;
    // Forge runs (FakeForge) write their datasets under a directory of their own.
    let data = tempfile::tempdir().unwrap().keep();
    config.forge.base_model = Some(data.join("base.gguf"));
    config.data_dir = data;
    config.forge.on_stagnation = false;
    let runtime = Runtime::builder()
        .config(config)
        .forge(Arc::new(aura_forge::FakeForge))
        .store(Arc::new(
            aura_core::store::SqliteStore::open_in_memory()
                .await
                .unwrap(),
        ))
        .sandbox(Arc::new(
            aura_sandbox::JailSandbox::builder()
                .python(python)
                .build()
                .unwrap(),
        ))
        .model(Arc::new(ScriptedModel::blueprint()))
        .build()
        .await
        .unwrap();
    let gateway = Gateway::bind(
        runtime,
        GatewayConfig::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN),
    )
    .await
    .unwrap();
    let url = format!("http://{}", gateway.local_addr());
    tokio::spawn(gateway.serve());
    url
}

/// Runs the client with `args`, `stdin` piped in, against `url` with `token`.
async fn aura(url: &str, token: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aura"))
        .args(args)
        .env("AURA_URL", url)
        .env("AURA_GATEWAY_TOKEN", token)
        .env("AURA_DATA_DIR", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    // The server runs on this test's runtime: wait for the child off its threads.
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_mode_teaches_uses_and_refuses_with_meaningful_exit_codes() {
    let url = gateway().await;
    let taught = aura(
        &url,
        TOKEN,
        &[
            "--object",
            "calc",
            "--",
            "teach yourself to calculate the fibonacci sequence",
        ],
        "",
    )
    .await;
    assert_eq!(taught.status.code(), Some(0), "{taught:?}");
    assert!(
        stdout(&taught).contains("I learned `fibonacci`"),
        "{taught:?}"
    );

    let used = aura(
        &url,
        TOKEN,
        &["--object", "calc", "--", "calculate fibonacci for 10"],
        "",
    )
    .await;
    assert_eq!(used.status.code(), Some(0), "{used:?}");
    assert!(stdout(&used).contains("55"), "{used:?}");

    let refused = aura(
        &url,
        TOKEN,
        &[
            "-o",
            "calc",
            "--",
            "teach yourself to list the files in the current directory using the os module",
        ],
        "",
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(stdout(&refused).contains("refused"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_name_auth_unreachable_and_usage() {
    let url = gateway().await;
    let wrong = aura(&url, "not-the-token", &["--", "hello"], "").await;
    assert_eq!(wrong.status.code(), Some(4), "{wrong:?}");

    // A port nobody listens on: bind one, then let it go.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let unreachable = aura(&dead, TOKEN, &["--", "hello"], "").await;
    assert_eq!(unreachable.status.code(), Some(3), "{unreachable:?}");

    let usage = aura(&url, TOKEN, &["--no-such-flag"], "").await;
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_repl_session() {
    let url = gateway().await;
    let session = "\
teach yourself to calculate the fibonacci sequence
:call fibonacci 12
:versions fibonacci
:models
:nonsense
:quit
this line is never read
";
    let out = aura(&url, TOKEN, &["--object", "repl"], session).await;
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the last command failed: {text}"
    );
    assert!(text.contains("> :call fibonacci 12\n144\n"), "{text}");
    assert!(text.contains("I learned `fibonacci`"), "{text}");
    // The method's doc is what the user asked for.
    assert!(
        text.contains("* v1 calculate the fibonacci sequence"),
        "{text}"
    );
    assert!(text.contains("unknown command :nonsense"), "{text}");
    assert!(!text.contains("never read"), "{text}");
    // Each persona with its backend and whether it answers.
    assert!(text.contains("ROBIN   ok          scripted ("), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_forge_session() {
    let url = gateway().await;
    let session = "\
teach yourself to calculate the fibonacci sequence
:forge joker
:forge alfred 2
:facets
:demote alfred
";
    let out = aura(&url, TOKEN, &["--object", "forge"], session).await;
    let text = stdout(&out);
    assert!(text.contains("\"joker\" is not a persona"), "{text}");
    assert!(text.contains(" registered (1 examples)"), "{text}");
    assert!(text.contains("not promoted: alfred:forge-"), "{text}");
    assert!(text.contains("(candidate)"), "the facet is listed: {text}");
    assert!(text.contains("alfred: base model"), "{text}");
    assert!(
        text.contains("alfred has no promoted facet to roll back"),
        "{text}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the last command failed: {text}"
    );
}

#[test]
fn genesis_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_genesis"))
            .current_dir(dir.path())
            .env("AURA_DATA_DIR", dir.path().join("data"))
            .env_remove("AURA_STORE_PATH")
            .env_remove("AURA_STORE")
            .env_remove("AURA_OLLAMA_MODEL")
            .output()
            .unwrap()
    };
    let first = run();
    let first_out = stdout(&first);
    assert!(first.status.success(), "{first:?}");
    assert!(
        first_out.contains("created the SQLite store"),
        "{first_out}"
    );
    assert!(
        first_out.contains("created the root object `genesis`"),
        "{first_out}"
    );
    assert!(dir.path().join("data/aura.sqlite").exists());

    let second = run();
    let second_out = stdout(&second);
    assert!(second.status.success(), "{second:?}");
    assert!(second_out.contains("nothing to do"), "{second_out}");
    assert!(!second_out.contains("done "), "{second_out}");
    assert!(
        second_out.contains("ok      root object `genesis`"),
        "{second_out}"
    );
}

/// The `gateway` server binary as an operator runs it: it says where it listens, serves
/// a call, and narrates it as JSON lines in `<log dir>/aura_core.log`, each tagged with
/// its component.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_json_lines_tagged_with_their_component() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let mut server = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--addr", "127.0.0.1:0", "--log-dir"])
        .arg(&logs)
        .env("AURA_DATA_DIR", dir.path().join("data"))
        .env("AURA_GATEWAY_TOKEN", TOKEN)
        .env("AURA_SANDBOX_PYTHON", "/usr/bin/python3")
        .env("AURA_MODEL_PATH", dir.path().join("no-model.gguf"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the server says where it listens: {first:?}"))
        .to_string();

    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    assert!(post("/v1/objects", json!({"name": "calc"}))
        .await
        .unwrap()
        .status()
        .is_success());
    let defined = http
        .put(format!("{url}/v1/objects/calc/methods/fibonacci"))
        .bearer_auth(TOKEN)
        .json(&json!({"source": FIB, "doc": "the n-th Fibonacci number"}))
        .send()
        .await
        .unwrap();
    assert!(defined.status().is_success(), "{defined:?}");
    let called: serde_json::Value = post(
        "/v1/objects/calc/messages",
        json!({"selector": "fibonacci", "args": [10]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(called["value"], json!(55), "{called}");
    server.kill().unwrap();
    server.wait().unwrap();

    let text = std::fs::read_to_string(logs.join("aura_core.log")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let components: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["target"].as_str()).collect();
    for component in ["Gateway", "Store"] {
        assert!(
            components.contains(component),
            "{component} is narrated: {components:?}"
        );
    }
}

/// Model settings reach the binaries from `.env` and from flags, and a malformed one
/// stops the gateway at startup, naming the setting, before it writes anything.
#[test]
fn model_settings_from_dot_env_and_flags_are_checked_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gateway = |env_file: &str, args: &[&str]| {
        std::fs::write(dir.path().join(".env"), env_file).unwrap();
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .current_dir(dir.path())
            .args(["--addr", "127.0.0.1:0", "--log-dir"])
            .arg(dir.path().join("logs"))
            .args(args)
            .env("AURA_DATA_DIR", &data)
            .env_remove("AURA_MODEL")
            .env_remove("AURA_MODEL_ROBIN")
            .output()
            .unwrap()
    };
    let out = gateway("AURA_MODEL_ROBIN=vllm:qwen\n", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("AURA_MODEL_ROBIN") && err.contains("unknown backend"),
        "{err}"
    );
    assert!(!data.join("aura.sqlite").exists(), "a store was created");

    // A flag wins over .env, and is checked the same way.
    let out = gateway(
        "AURA_MODEL_ROBIN=ollama:llama3\n",
        &["--persona-model", "robin=openai:http://127.0.0.1:8080/v1"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("AURA_MODEL_ROBIN") && err.contains("names no model"),
        "{err}"
    );
    let out = gateway("", &["--persona-model", "robin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PERSONA=SPEC"),
        "{err}"
    );

    // Genesis reports which backend serves each persona, and that this one is down.
    std::fs::write(
        dir.path().join(".env"),
        "AURA_MODEL_BABS=openai:http://127.0.0.1:9/v1#qwen\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_genesis"))
        .current_dir(dir.path())
        .env("AURA_DATA_DIR", &data)
        .env_remove("AURA_MODEL")
        .env_remove("AURA_MODEL_BABS")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("ok      BABS: openai:http://127.0.0.1:9/v1#qwen (AURA_MODEL_BABS)"),
        "{text}"
    );
    assert!(
        text.contains("warning AURA_MODEL_BABS: openai:http://127.0.0.1:9/v1#qwen: "),
        "{text}"
    );
}
