//! Crash consistency at scale (issue #21): the real gateway on a file store, written to
//! by concurrent clients, killed with SIGKILL at random moments and restarted, with the
//! store checked after every kill.
//!
//! ```text
//! cargo build --release -p aura-benches --bin kill_loop
//! target/release/kill_loop --kills 100 --clients 4
//! ```
//!
//! Each round starts the gateway (this binary with `--serve`: `aura_gateway::Gateway`
//! over the real jail, a SQLite file and the scripted model, so learning is instant),
//! runs `--clients` clients against it and kills it with SIGKILL after a random
//! `--min-ms`..`--max-ms`. The clients create objects with slots, define methods by hand,
//! call a method that writes a slot (`bump`), and tell their objects "calculate
//! fibonacci for N" (the first learns `fibonacci`; every one records memory). Each write
//! the gateway acknowledged with a 2xx is remembered. While the gateway is down the
//! checker opens the file and verifies:
//!
//! - `PRAGMA integrity_check` is `ok`;
//! - every method version has the event that wrote it (`learn.committed` through its
//!   provenance, `method.defined`, `method.rolled_back`), and every such event names a
//!   stored version;
//! - every object's revision and its `n` slot never went backwards between checks;
//! - every acknowledged write is present: objects, method versions, memory turns, and
//!   each object's `n` at least the last value `bump` returned.
//!
//! It prints the kills, the acknowledged writes and every violation, and exits 1 when
//! there is one. CI runs a short tier (`benches/tests/kill_loop.rs`).
#![allow(clippy::expect_used)] // a harness: a failed setup should stop it loudly

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aura_benches::kill_check::{check, Ack, Seen};
use aura_benches::{publish_addr, scripted_runtime, store_path, wait_for_gateway, Dice};
use aura_gateway::{Gateway, GatewayConfig};
use clap::Parser;
use serde_json::{json, Value};

/// Kills the gateway at random moments under concurrent writes and checks the store
/// after each kill.
#[derive(Parser)]
struct Args {
    /// How many times the gateway is killed (and restarted).
    #[arg(long, default_value_t = 100)]
    kills: u32,
    /// Concurrent writing clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The shortest a round runs before its kill, in milliseconds.
    #[arg(long, default_value_t = 200)]
    min_ms: u64,
    /// The longest a round runs before its kill, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    max_ms: u64,
    /// Where the store lives (default: a fresh temporary directory, removed after a
    /// clean run).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The workload's and the kills' seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Internal: serve the store in this directory (the process that is killed).
    #[arg(long, hide = true)]
    serve: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match args.serve.clone() {
        Some(dir) => {
            rt.block_on(serve(dir));
            ExitCode::SUCCESS
        }
        None => rt.block_on(run(args)),
    }
}

/// The process that is killed: the gateway over the store in `dir`. It writes its
/// address to `dir/addr` once it listens.
async fn serve(dir: PathBuf) {
    let runtime = scripted_runtime(&dir, |_| {}).await;
    let gateway = Gateway::bind(
        runtime,
        GatewayConfig::default().addr(([127, 0, 0, 1], 0).into()),
    )
    .await
    .expect("gateway");
    publish_addr(&dir, gateway.local_addr());
    let _ = gateway.serve().await;
}

/// Starts the gateway and waits until it answers.
async fn start(dir: &Path) -> (Child, String) {
    let addr_file = dir.join("addr");
    let _ = std::fs::remove_file(&addr_file);
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--serve")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the gateway");
    let base = wait_for_gateway(
        dir,
        || child.try_wait().ok().flatten(),
        Duration::from_secs(60),
    )
    .await;
    (child, base)
}

/// One client's loop: its own objects, one request at a time, until `stop`. Returns its
/// objects, those it started with and those the gateway acknowledged creating.
async fn client(
    base: String,
    id: usize,
    round: u32,
    seed: u64,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    objects: Vec<String>,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut dice = Dice(seed ^ ((id as u64 + 1) << 32) ^ u64::from(round + 1));
    let mut mine = objects;
    let mut i = 0u64;
    let ack = |a: Ack| acks.lock().expect("acks").push(a);
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let roll = dice.roll(100);
        // A fresh object until the client has a few, then mostly work on them.
        if mine.len() < 2 || roll < 20 {
            let name = format!("k{id}_{round}_{i}");
            let r = http
                .post(format!("{base}/objects"))
                .json(&json!({ "name": name, "slots": { "n": 0 } }))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().as_u16() == 201) {
                ack(Ack::Object { name: name.clone() });
                mine.push(name);
            }
            continue;
        }
        let object = mine[dice.roll(mine.len())].clone();
        let result = match roll {
            20..=39 => {
                let selector = format!("m{}", dice.roll(8));
                let source = format!("def {selector}(self):\n    return {i}\n");
                put_method(&http, &base, &object, &selector, &source)
                    .await
                    .map(|version| Ack::Method {
                        object: object.clone(),
                        selector,
                        version,
                    })
            }
            40..=49 => {
                let source = "def bump(self):\n    self.n = self.n + 1\n    return self.n\n";
                put_method(&http, &base, &object, "bump", source)
                    .await
                    .map(|version| Ack::Method {
                        object: object.clone(),
                        selector: "bump".into(),
                        version,
                    })
            }
            50..=79 => post(
                &http,
                &base,
                &object,
                json!({ "selector": "bump", "args": [] }),
            )
            .await
            .and_then(|v| v["value"].as_i64())
            .map(|n| Ack::Slot {
                object: object.clone(),
                n,
            }),
            _ => {
                let text = format!("calculate fibonacci for {}", dice.roll(15));
                post(&http, &base, &object, json!({ "text": text }))
                    .await
                    .map(|_| Ack::Turn {
                        object: object.clone(),
                        text,
                    })
            }
        };
        if let Some(a) = result {
            ack(a);
        }
    }
    mine
}

async fn put_method(
    http: &reqwest::Client,
    base: &str,
    object: &str,
    selector: &str,
    source: &str,
) -> Option<u64> {
    let r = http
        .put(format!("{base}/objects/{object}/methods/{selector}"))
        .json(&json!({ "source": source }))
        .send()
        .await
        .ok()?;
    if r.status().as_u16() != 201 {
        return None;
    }
    r.json::<Value>().await.ok()?["version"].as_u64()
}

async fn post(http: &reqwest::Client, base: &str, object: &str, body: Value) -> Option<Value> {
    let r = http
        .post(format!("{base}/objects/{object}/messages"))
        .json(&body)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn run(args: Args) -> ExitCode {
    let temporary = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("aura-kill-loop-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("the store's directory");
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut seen = Seen::default();
    let mut violations = Vec::new();
    let mut dice = Dice(args.seed | 1);
    let mut owned: Vec<Vec<String>> = vec![Vec::new(); args.clients];
    let started = Instant::now();
    eprintln!(
        "kill_loop: {} kills, {} clients, {}–{} ms per round, store {}",
        args.kills,
        args.clients,
        args.min_ms,
        args.max_ms,
        store_path(&dir).display()
    );
    for round in 0..args.kills {
        let (mut child, base) = start(&dir).await;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..args.clients)
            .map(|c| {
                tokio::spawn(client(
                    base.clone(),
                    c,
                    round,
                    args.seed,
                    stop.clone(),
                    acks.clone(),
                    std::mem::take(&mut owned[c]),
                ))
            })
            .collect();
        let span = args.max_ms.saturating_sub(args.min_ms) as usize + 1;
        let wait = args.min_ms + dice.roll(span) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().expect("SIGKILL the gateway");
        let _ = child.wait();
        stop.store(true, Ordering::Relaxed);
        for (c, task) in clients.into_iter().enumerate() {
            owned[c] = task.await.expect("a client task");
        }
        let acked = acks.lock().expect("acks").clone();
        let found = check(&store_path(&dir), &acked, &mut seen).expect("read the store");
        eprintln!(
            "kill {:>3}/{}: after {wait} ms; {} acknowledged writes so far; {} violation(s)",
            round + 1,
            args.kills,
            acked.len(),
            found.len()
        );
        for v in &found {
            eprintln!("  violation: {v}");
        }
        violations.extend(found);
    }
    let acked = acks.lock().expect("acks").clone();
    let count = |f: fn(&Ack) -> bool| acked.iter().filter(|a| f(a)).count();
    println!(
        "kill_loop: {} kills in {:.0} s; {} acknowledged writes ({} objects, {} method versions, \
         {} memory turns, {} slot writes); {} violations",
        args.kills,
        started.elapsed().as_secs_f64(),
        acked.len(),
        count(|a| matches!(a, Ack::Object { .. })),
        count(|a| matches!(a, Ack::Method { .. })),
        count(|a| matches!(a, Ack::Turn { .. })),
        count(|a| matches!(a, Ack::Slot { .. })),
        violations.len()
    );
    if violations.is_empty() {
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("the store is kept for inspection: {}", dir.display());
        ExitCode::FAILURE
    }
}
