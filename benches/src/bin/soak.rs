//! A soak of the gateway at library size (issues #27 and #21). The documented run:
//!
//! ```text
//! cargo build --release -p aura-benches --bin soak
//! target/release/soak --minutes 10 --objects 10000 --methods 10000 --csv soak.csv \
//!     --cli target/release/aura --check
//! ```
//! The test command runs a one-minute tier of it (`benches/tests/it/soak.rs`).
//!
//! A gateway process of its own (this binary, `--serve`) fills a fresh SQLite store with
//! `--methods` methods on `genesis` and `--objects` objects and serves it with the real
//! gateway on loopback over the real jail and the scripted model. This process then
//! runs `--clients` clients for `--minutes`, each looping over a mixed workload: read an
//! object (55 %), search memory (5 %), call a method (15 %), create an object (10 %),
//! tell an object something in words (10 %) and define a method on `genesis` (5 %);
//! reads and calls go to the objects made before the load starts (a name being created
//! may still be in flight). Beside them, `--sse-clients` clients connect to the live
//! monologue (`/v1/events`) and hang up after a random moment, again and again, and with
//! `--cli` the CLI's one-shot mode sends a message in words every `--cli-every-s`
//! seconds.
//!
//! Every second it writes what the gateway process holds to the CSV (`elapsed_s,rss_kib,
//! fds,threads,children,zombies,store_kib,table_cache_kib,requests,errors`; the clients
//! run here, so their memory is not counted); at the end it draws resident memory beside
//! the method-table cache's share of it (`<csv>.png`) and descriptors, threads and
//! children (`<csv>-resources.png`) beside the CSV, and prints the growth of resident memory after the first minute
//! (goal: ≤ 10 %). With `--check` it exits with 1 when, after warm-up, descriptors,
//! threads or children grow from the first half of the run to the second, or a child is
//! left unreaped once the load stops.
#![allow(clippy::expect_used)] // a measurement: a failed setup should stop it loudly

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_benches::plot::{line_chart, Chart, Series};
use aura_benches::{
    leak_check, publish_addr, scripted_runtime, store_path, wait_for_gateway, write_whole, Dice,
    ProcessStats,
};
use aura_core::store::{NewObject, StoreExt};
use aura_gateway::{Gateway, GatewayConfig};
use aura_store::{NewMethod, Provenance};
use clap::Parser;
use serde_json::json;

/// Runs the gateway under a mixed workload and samples its memory every second.
#[derive(Parser)]
struct Args {
    /// How long the workload runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Objects created before the workload starts.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Methods defined on genesis before the workload starts.
    #[arg(long, default_value_t = 10_000)]
    methods: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Clients that connect to the live monologue (SSE) and drop, over and over.
    #[arg(long, default_value_t = 2)]
    sse_clients: usize,
    /// The `aura` CLI binary: its one-shot mode sends a message every `--cli-every-s`.
    #[arg(long)]
    cli: Option<PathBuf>,
    /// Seconds between two runs of the CLI.
    #[arg(long, default_value_t = 2.0)]
    cli_every_s: f64,
    /// Fail (exit 1) on a growth trend in descriptors, threads or children, or an
    /// unreaped child.
    #[arg(long)]
    check: bool,
    /// Where the samples go.
    #[arg(long, default_value = "soak.csv")]
    csv: PathBuf,
    /// The resolution cache's table bound (`AURA_CACHE_TABLES`); the library's default
    /// when not given.
    #[arg(long)]
    cache_tables: Option<usize>,
    /// Internal: be the gateway process over a store in this directory.
    #[arg(long, hide = true)]
    serve: Option<PathBuf>,
}

// The gateway binary's allocator (examples/src/bin/gateway.rs), so the soak measures
// what it ships with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match args.serve.clone() {
        Some(dir) => rt.block_on(serve(&args, &dir)),
        None => rt.block_on(run(args)),
    }
}

/// The gateway process: fills a store in `dir`, serves it, and keeps `dir/cache` (the
/// resolution cache's fill, one line, rewritten every second) and `dir/addr` (written
/// once it listens).
async fn serve(args: &Args, dir: &Path) {
    let runtime = scripted_runtime(dir, |config| {
        if let Some(n) = args.cache_tables {
            config.cache.tables = n;
        }
    })
    .await;
    eprintln!(
        "filling: {} methods on genesis, {} objects",
        args.methods, args.objects
    );
    for i in 0..args.methods {
        let name = format!("skill_{i:05}");
        runtime
            .store()
            .put_method(NewMethod {
                object_id: runtime.root(),
                selector: name.parse().expect("selector"),
                source: format!("def {name}(self, n=0):\n    return n + {i}\n"),
                tests: format!(
                    "def test_{name}(obj):\n    assert obj.{name}(1) == {}\n",
                    i + 1
                ),
                doc: format!("Adds {i} to n."),
                provenance: Provenance::Manual,
                // It calls no other method, as `define_method` would record.
                calls: Some(vec![]),
            })
            .await
            .expect("method");
    }
    for i in 0..args.objects {
        runtime
            .create_object(NewObject::named(format!("soak_{i:06}")))
            .await
            .expect("object");
    }
    runtime.invalidate_all();

    let gateway = Gateway::bind(
        runtime.clone(),
        GatewayConfig::default().addr(([127, 0, 0, 1], 0).into()),
    )
    .await
    .expect("gateway");
    let cache_dir = dir.to_path_buf();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            CacheFill::of(&runtime).write(&cache_dir);
        }
    });
    // The driver holds this process's stdin: at its end (the driver exited, however it
    // did) the gateway goes too.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    publish_addr(dir, gateway.local_addr());
    let _ = gateway.serve().await;
}

/// The resolution cache's fill, which the gateway process writes to `dir/cache` (one
/// line of four numbers) and the driver reads from there.
#[derive(Default)]
struct CacheFill {
    views: u64,
    tables: u64,
    table_kib: u64,
    learn_locks: u64,
}

impl CacheFill {
    fn of(runtime: &aura_core::Runtime) -> Self {
        let c = runtime.cache_stats();
        CacheFill {
            views: c.views as u64,
            tables: c.tables as u64,
            table_kib: (c.table_bytes >> 10) as u64,
            learn_locks: runtime.learn_lock_count() as u64,
        }
    }

    /// Best effort: a sample missed is a sample, not a failure of the gateway.
    fn write(&self, dir: &Path) {
        let line = format!(
            "{} {} {} {}",
            self.views, self.tables, self.table_kib, self.learn_locks
        );
        let _ = write_whole(&dir.join("cache"), &line);
    }

    /// What was last written; zeros before the first write.
    fn read(dir: &Path) -> Self {
        let line = std::fs::read_to_string(dir.join("cache")).unwrap_or_default();
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match n[..] {
            [views, tables, table_kib, learn_locks] => CacheFill {
                views,
                tables,
                table_kib,
                learn_locks,
            },
            _ => CacheFill::default(),
        }
    }
}

/// Starts the gateway process on `dir` and waits until it answers: the process and the
/// API's base URL.
async fn start_gateway(args: &Args, dir: &Path) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::new(std::env::current_exe().expect("own path"));
    command
        .arg("--serve")
        .arg(dir)
        .args(["--objects", &args.objects.to_string()])
        .args(["--methods", &args.methods.to_string()])
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(n) = args.cache_tables {
        command.args(["--cache-tables", &n.to_string()]);
    }
    let mut child = command.spawn().expect("start the gateway process");
    // Filling a library of 10,000 methods and objects takes about a minute.
    let limit = Duration::from_secs(30 * 60);
    let base = wait_for_gateway(dir, || child.try_wait().ok().flatten(), limit).await;
    (child, base)
}

async fn run(args: Args) {
    let dir = std::env::temp_dir().join(format!("aura-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The gateway runs in a process of its own, so what is measured is the gateway's
    // memory, not the clients' beside it.
    let (mut gateway, base) = start_gateway(&args, &dir).await;
    let gateway_pid = gateway.id().expect("the gateway's pid");
    let gateway_url = base.trim_end_matches("/v1").to_string();
    let store_file = store_path(&dir);

    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Names for the objects the workload creates. Reads and calls go to the objects
    // made before it starts: a name handed out here may still be in flight.
    let created = Arc::new(AtomicU64::new(args.objects as u64));
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let (base, requests, errors, stop, created) = (
            base.clone(),
            requests.clone(),
            errors.clone(),
            stop.clone(),
            created.clone(),
        );
        let (methods, prefilled) = (args.methods, args.objects);
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            while !stop.load(Ordering::Relaxed) {
                let object = format!("soak_{:06}", dice.roll(prefilled));
                let request = match dice.roll(100) {
                    0..=54 => http.get(format!("{base}/objects/{object}")),
                    55..=59 => http
                        .get(format!("{base}/memory"))
                        .query(&[("q", "fibonacci sequence")]),
                    60..=74 => {
                        let selector = format!("skill_{:05}", dice.roll(methods));
                        http.post(format!("{base}/objects/{object}/messages"))
                            .json(&json!({ "selector": selector, "args": [1] }))
                    }
                    75..=84 => {
                        let n = created.fetch_add(1, Ordering::Relaxed);
                        http.post(format!("{base}/objects"))
                            .json(&json!({ "name": format!("soak_{n:06}") }))
                    }
                    85..=94 => http
                        .post(format!("{base}/objects/{object}/messages"))
                        .json(&json!({ "text": "calculate fibonacci for 10" })),
                    _ => {
                        let selector = format!("extra_{}_{}", c, dice.roll(1000));
                        http.put(format!("{base}/objects/genesis/methods/{selector}"))
                            .json(&json!({ "source": format!("def {selector}(self):\n    return 1\n") }))
                    }
                };
                requests.fetch_add(1, Ordering::Relaxed);
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        let what = format!("{} {}", r.status(), r.url().path());
                        let body = r.text().await.unwrap_or_default();
                        errors.note(format!("{what}: {body}"));
                    }
                    Err(e) => errors.note(e.to_string()),
                }
            }
        }));
    }

    for c in 0..args.sse_clients {
        clients.push(tokio::spawn(sse_client(base.clone(), c, stop.clone())));
    }
    if let Some(cli) = args.cli.clone() {
        let url = gateway_url.clone();
        let every = Duration::from_secs_f64(args.cli_every_s);
        let (requests, errors, stop) = (requests.clone(), errors.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                requests.fetch_add(1, Ordering::Relaxed);
                let out = tokio::process::Command::new(&cli)
                    .args(["--url", &url, "--object", "soak_cli", "--quiet", "--"])
                    .arg("calculate fibonacci for 10")
                    .kill_on_drop(true)
                    .output()
                    .await;
                match out {
                    Ok(o) if o.status.success() => {}
                    Ok(o) => errors.note(format!(
                        "the CLI exited with {}: {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    )),
                    Err(e) => errors.note(format!("the CLI did not run: {e}")),
                }
                tokio::time::sleep(every).await;
            }
        }));
    }

    let mut csv = std::fs::File::create(&args.csv).expect("csv");
    writeln!(
        csv,
        "elapsed_s,rss_kib,fds,threads,children,zombies,store_kib,table_cache_kib,requests,errors"
    )
    .expect("csv");
    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let mut samples: Vec<(f64, ProcessStats)> = Vec::new();
    let mut table_cache: Vec<(f64, f64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < run_for {
        tick.tick().await;
        let elapsed = started.elapsed().as_secs_f64().round();
        let now = ProcessStats::of(gateway_pid).expect("the gateway process exited");
        let store_kib = [store_file.clone(), store_file.with_extension("sqlite-wal")]
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len() >> 10)
            .sum::<u64>();
        // The table cache's share, to tell its filling (bounded) from other growth.
        let table_cache_kib = CacheFill::read(&dir).table_kib;
        writeln!(
            csv,
            "{elapsed},{},{},{},{},{},{store_kib},{table_cache_kib},{},{}",
            now.rss_kib,
            now.fds,
            now.threads,
            now.children,
            now.zombies,
            requests.load(Ordering::Relaxed),
            errors.count()
        )
        .expect("csv");
        samples.push((elapsed, now));
        table_cache.push((elapsed, table_cache_kib as f64 / 1024.0));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    // Let the jail reap what the last calls left and idle connections close.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = ProcessStats::of(gateway_pid).expect("the gateway process exited");

    let rss_at = |t: f64| {
        samples
            .iter()
            .find(|(e, _)| *e >= t)
            .map(|(_, s)| s.rss_kib)
    };
    let last = samples.last().map_or(0, |(_, s)| s.rss_kib);
    let growth = rss_at(60.0)
        .map(|base| format!("{:+.1} %", (last as f64 / base as f64 - 1.0) * 100.0))
        .unwrap_or_else(|| "n/a (ran under a minute)".into());
    draw(&args, &samples, table_cache);
    let verdict = leak_check(&samples, &settled);
    // What the bounded caches hold, to tell their filling from other growth.
    let cache = CacheFill::read(&dir);
    let _ = gateway.kill().await;
    println!(
        "requests={} errors={} rss_end_mib={:.1} growth_after_first_minute={growth} \
         settled: fds={} threads={} children={} zombies={} \
         cached_views={} cached_tables={} table_kib={} learn_locks={} csv={}",
        requests.load(Ordering::Relaxed),
        errors.count(),
        last as f64 / 1024.0,
        settled.fds,
        settled.threads,
        settled.children,
        settled.zombies,
        cache.views,
        cache.tables,
        cache.table_kib,
        cache.learn_locks,
        args.csv.display()
    );
    for e in errors.first.lock().iter().flat_map(|f| f.iter()) {
        println!("error: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    match verdict {
        Ok(()) => {
            println!("check: ok (no growth in descriptors, threads or children; no unreaped child)")
        }
        Err(why) => {
            println!("check: FAILED: {why}");
            if args.check {
                std::process::exit(1);
            }
        }
    }
}

/// Failed requests: how many, and the first few in words.
#[derive(Default)]
struct Errors {
    count: AtomicU64,
    first: std::sync::Mutex<Vec<String>>,
}

impl Errors {
    fn note(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first.lock() {
            if first.len() < 5 {
                first.push(what);
            }
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A client of the live monologue: connects, reads for a random moment, hangs up.
async fn sse_client(base: String, c: usize, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::new();
    let mut dice = Dice(0xD1B5_4A32_D192_ED03 ^ (c as u64 + 1));
    while !stop.load(Ordering::Relaxed) {
        let hold = Duration::from_millis(100 + dice.roll(1400) as u64);
        if let Ok(mut stream) = http.get(format!("{base}/events")).send().await {
            let _ = tokio::time::timeout(hold, async {
                while let Ok(Some(_)) = stream.chunk().await {}
            })
            .await;
        } // dropped here: the client hangs up mid-stream
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory beside the table cache's share of it (`<csv>.png`), and
/// descriptors, threads and children (`<csv>-resources.png`) over the run.
fn draw(args: &Args, samples: &[(f64, ProcessStats)], table_cache: Vec<(f64, f64)>) {
    let series = |label: &str, f: fn(&ProcessStats) -> f64| Series {
        label: label.into(),
        points: samples.iter().map(|(t, s)| (*t, f(s))).collect(),
    };
    let title = format!(
        "AURA gateway soak: {} objects, {} methods on genesis, {} clients",
        args.objects, args.methods, args.clients
    );
    let chart = |y_label| Chart {
        title: &title,
        x_label: "seconds",
        y_label,
        log_x: false,
        log_y: false,
        whole_x: false,
    };
    let png = args.csv.with_extension("png");
    let rss = [
        series("RSS", |s| s.rss_kib as f64 / 1024.0),
        Series {
            label: "method-table cache (bounded)".into(),
            points: table_cache,
        },
    ];
    let stem = args
        .csv
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("soak");
    let resources_png = args.csv.with_file_name(format!("{stem}-resources.png"));
    let resources = [
        series("open descriptors", |s| s.fds as f64),
        series("threads", |s| s.threads as f64),
        series("child processes", |s| s.children as f64),
    ];
    for (path, y_label, series) in [
        (&png, "resident memory (MiB)", &rss[..]),
        (&resources_png, "count", &resources[..]),
    ] {
        if let Err(why) = line_chart(path, &chart(y_label), series) {
            eprintln!("no chart {}: {why}", path.display());
        }
    }
}
