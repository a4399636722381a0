//! The scale harness (issues #23 and #27): what each public operation costs, in time and
//! in resident memory, as the library, the memory graph and the audit trail grow.
//!
//! ```text
//! cargo run --release -p aura-benches --bin scale -- --out data/scale
//! ```
//!
//! One SQLite store grows in three directions, each to its sizes in turn:
//! - **methods** on `genesis` (default 1 / 100 / 1,000 / 10,000), defined through the
//!   runtime as a host would, which times the build. At each size: a call (`send`) of a
//!   one-line method, a call that reaches one helper, a define (a new version of one
//!   method), the first call after that define, a rollback, a `tell` answered with the
//!   scripted model, and the first page of the object listing;
//! - **memory nodes** (1,000 / 10,000 / 100,000): a grounding search;
//! - **audit events** (10,000 / 100,000 / 1,000,000): the first page, a page from the
//!   middle of the trail, a page of one rare kind, and a curation over the trail.
//!
//! Each operation's median and 90th percentile over `--reps` runs, and the process's
//! resident memory after each size, go to `scale.csv`, a Markdown table `scale.md` and one
//! PNG chart per direction in `--out`. The goals are checked at the end. Everything runs
//! in the real jail on the embedded store; the scripted model makes `tell` instant, so it
//! measures everything but a model.
#![allow(clippy::expect_used)] // a measurement: a failed setup should stop it loudly

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aura_benches::plot::{line_chart, Chart, Series};
use aura_benches::{rss_kib, scripted_runtime, Dice};
use aura_core::store::{AuditQuery, NewAuditEvent, NewMemoryNode, NewObject, ObjectId, Page};
use aura_core::Runtime;
use aura_forge::CurationConfig;
use clap::Parser;
use serde_json::json;

/// Times every public operation at growing store sizes; writes CSV, Markdown and PNG.
#[derive(Parser)]
#[command(about, long_about = None)]
struct Args {
    /// Methods on genesis to measure at, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000,10000")]
    methods: Vec<usize>,
    /// Memory nodes to measure at, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    nodes: Vec<usize>,
    /// Audit events to measure at, in increasing order.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    events: Vec<usize>,
    /// Runs of each operation per size (the slow ones run a quarter as often).
    #[arg(long, default_value_t = 100)]
    reps: usize,
    /// Where the store, scale.csv, scale.md and the charts go (replaced).
    #[arg(long, default_value = "data/scale")]
    out: PathBuf,
}

/// One measured operation at one size.
struct Row {
    family: &'static str,
    size: usize,
    op: &'static str,
    median_us: f64,
    p90_us: f64,
    rss_mib: f64,
}

/// Runs `f` `reps` times and returns the median and 90th percentile, in microseconds.
async fn time<F, Fut>(reps: usize, mut f: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut took: Vec<Duration> = Vec::with_capacity(reps);
    for i in 0..reps.max(1) {
        let started = Instant::now();
        f(i).await;
        took.push(started.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.9))
}

fn rss_mib() -> f64 {
    rss_kib() as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.out.exists() {
        std::fs::remove_dir_all(&args.out).expect("the old run directory can be removed");
    }
    std::fs::create_dir_all(&args.out).expect("the run directory");
    let runtime = scripted_runtime(&args.out, |_| {}).await;

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    methods(&runtime, &args, &mut rows, &mut notes).await;
    nodes(&runtime, &args, &mut rows).await;
    events(&runtime, &args, &mut rows).await;
    report(&args.out, &rows, &notes);
}

/// The methods direction: the library on genesis grows; calls, writes and reads are timed.
async fn methods(runtime: &Runtime, args: &Args, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let root = runtime.root();
    runtime
        .define_method(root, "probe", "def probe(self, n):\n    return n + 1\n", "")
        .await
        .expect("probe");
    runtime
        .define_method(
            root,
            "helper",
            "def helper(self, n):\n    return n * 2\n",
            "",
        )
        .await
        .expect("helper");
    runtime
        .define_method(
            root,
            "with_helper",
            "def with_helper(self, n):\n    return self.helper(n) + 1\n",
            "",
        )
        .await
        .expect("with_helper");
    runtime
        .define_method(root, "scratch", "def scratch(self):\n    return 0\n", "")
        .await
        .expect("scratch");
    let caller = runtime
        .create_object(NewObject::named("caller"))
        .await
        .expect("caller");
    let talker = runtime
        .create_object(NewObject::named("talker"))
        .await
        .expect("talker");
    for i in 0..50 {
        runtime
            .create_object(NewObject::named(format!("listed_{i:03}")))
            .await
            .expect("object");
    }
    let mut defined = 4; // the four above
    let mut building = Duration::ZERO;
    for &size in &args.methods {
        let started = Instant::now();
        while defined < size {
            let name = format!("skill_{defined:05}");
            let source = format!(
                "def {name}(self, n=0):\n    total = 0\n    for k in range(n):\n        \
                 total += k * {defined}\n    return total\n"
            );
            runtime
                .define_method(root, &name, source, format!("Adds up k times {defined}."))
                .await
                .expect("define");
            defined += 1;
        }
        building += started.elapsed();
        eprintln!(
            "methods: {defined} on genesis ({:.1} s of defining so far)",
            building.as_secs_f64()
        );
        let one = |op, (median_us, p90_us): (f64, f64)| Row {
            family: "methods",
            size,
            op,
            median_us,
            p90_us,
            rss_mib: rss_mib(),
        };
        // Warm the caller's view once, then time warm calls.
        runtime
            .send(caller.id, "probe", vec![json!(1)])
            .await
            .expect("probe");
        rows.push(one(
            "send",
            time(args.reps, |i| async move {
                let got = runtime.send(caller.id, "probe", vec![json!(i)]).await;
                assert_eq!(got.expect("probe"), json!(i + 1));
            })
            .await,
        ));
        rows.push(one(
            "send (reaches a helper)",
            time(args.reps, |i| async move {
                let got = runtime.send(caller.id, "with_helper", vec![json!(i)]).await;
                assert_eq!(got.expect("with_helper"), json!(2 * i + 1));
            })
            .await,
        ));
        rows.push(one(
            "define",
            time(args.reps, |i| async move {
                let source = format!("def scratch(self):\n    return {i}\n");
                runtime
                    .define_method(root, "scratch", source, "")
                    .await
                    .expect("define");
            })
            .await,
        ));
        let reps = (args.reps / 4).max(3);
        rows.push(one(
            "send after a define on genesis",
            time(reps, |i| async move {
                let source = format!("def scratch(self):\n    return {i}\n");
                runtime
                    .define_method(root, "scratch", source, "")
                    .await
                    .expect("define");
                let got = runtime.send(caller.id, "scratch", vec![]).await;
                assert_eq!(got.expect("scratch"), json!(i));
            })
            .await,
        ));
        rows.push(one(
            "rollback",
            time(reps, |_| async move {
                runtime
                    .rollback_method(root, "scratch", 1)
                    .await
                    .expect("rollback");
            })
            .await,
        ));
        rows.push(one(
            "tell (scripted model)",
            time(reps, |_| async move {
                runtime
                    .tell(talker.id, "calculate fibonacci for 10")
                    .await
                    .expect("tell");
            })
            .await,
        ));
        rows.push(one(
            "list objects (first page)",
            time(args.reps, |_| async move {
                let page = runtime
                    .store()
                    .list_objects(Page {
                        offset: 0,
                        limit: 100,
                    })
                    .await
                    .expect("list");
                assert!(!page.is_empty());
            })
            .await,
        ));
    }
    let seconds = building.as_secs_f64();
    notes.push(format!(
        "building the library to {defined} methods through define_method took {seconds:.1} s \
         (goal ≤ 60 s at 10,000): {}",
        verdict(defined < 10_000 || seconds <= 60.0)
    ));
}

/// Vocabulary for generated memory text and queries.
const WORDS: &[&str] = &[
    "fibonacci",
    "prime",
    "weather",
    "lisbon",
    "invoice",
    "garden",
    "river",
    "ledger",
    "orbit",
    "violin",
    "harbour",
    "census",
    "glacier",
    "pepper",
    "lantern",
    "meadow",
    "quartz",
    "saddle",
    "tundra",
    "velvet",
    "walnut",
    "yonder",
    "zephyr",
    "anchor",
    "beacon",
    "cobalt",
    "dynamo",
    "ember",
    "falcon",
    "granite",
];

fn sentence(dice: &mut Dice, n: usize) -> String {
    let mut text = String::new();
    for k in 0..n {
        if k > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[dice.roll(WORDS.len())]);
    }
    text
}

/// The memory direction: the graph grows; grounding searches are timed.
async fn nodes(runtime: &Runtime, args: &Args, rows: &mut Vec<Row>) {
    let store = runtime.store();
    let mut dice = Dice(0x5EED);
    let mut have = 0;
    for &size in &args.nodes {
        let started = Instant::now();
        while have < size {
            let mut tx = store.begin().await.expect("begin");
            for _ in 0..(size - have).min(5_000) {
                let text = format!("{} #{have}", sentence(&mut dice, 12));
                tx.add_memory_node(NewMemoryNode::new("note", text))
                    .await
                    .expect("node");
                have += 1;
            }
            tx.commit().await.expect("commit");
        }
        eprintln!(
            "memory: {have} nodes ({:.1} s to add)",
            started.elapsed().as_secs_f64()
        );
        let (median_us, p90_us) = time(args.reps, |i| {
            let query = format!(
                "{} {}",
                WORDS[i % WORDS.len()],
                WORDS[(i * 7 + 3) % WORDS.len()]
            );
            async move {
                let hits = store.search_memory(&query, 8).await.expect("search");
                assert!(!hits.is_empty(), "{query}");
            }
        })
        .await;
        rows.push(Row {
            family: "memory nodes",
            size,
            op: "grounding search (8 hits)",
            median_us,
            p90_us,
            rss_mib: rss_mib(),
        });
    }
}

/// The trail direction: events accumulate; paging and curation are timed.
async fn events(runtime: &Runtime, args: &Args, rows: &mut Vec<Row>) {
    let store = runtime.store();
    let mut have = 0usize;
    for &size in &args.events {
        let started = Instant::now();
        while have < size {
            let mut tx = store.begin().await.expect("begin");
            for _ in 0..(size - have).min(10_000) {
                // One event in a thousand is of a rare kind, the rest are calls.
                let kind = if have % 1000 == 999 {
                    "scale.rare"
                } else {
                    "scale.call"
                };
                let payload = json!({ "selector": "probe", "n": have, "ms": 2.5 });
                tx.append_event(NewAuditEvent::new(kind, None::<ObjectId>, payload))
                    .await
                    .expect("event");
                have += 1;
            }
            tx.commit().await.expect("commit");
        }
        eprintln!(
            "trail: {have} events ({:.1} s to append)",
            started.elapsed().as_secs_f64()
        );
        // A page from the middle: the cursor is an event halfway along.
        let mut walk = AuditQuery {
            limit: Some(aura_store::MAX_AUDIT_PAGE),
            ..AuditQuery::default()
        };
        let mut middle = None;
        let mut seen = 0;
        while seen < size / 2 {
            let page = store.query_audit(&walk).await.expect("page");
            seen += page.events.len();
            middle = page.events.last().map(|e| e.id);
            match page.next {
                Some(next) => walk.after = Some(next),
                None => break,
            }
        }
        let one = |op, (median_us, p90_us): (f64, f64)| Row {
            family: "audit events",
            size,
            op,
            median_us,
            p90_us,
            rss_mib: rss_mib(),
        };
        // Three pages of 100: the first, one from the middle, and one of a rare kind
        // (full once the trail holds 100 of them), with the fewest events each must hold.
        let pages = [
            ("audit page (first 100)", AuditQuery::default(), 100),
            (
                "audit page (100, from the middle)",
                AuditQuery {
                    after: middle,
                    ..AuditQuery::default()
                },
                100,
            ),
            (
                "audit page (one rare kind)",
                AuditQuery {
                    kind: Some("scale.rare".into()),
                    ..AuditQuery::default()
                },
                1,
            ),
        ];
        for (op, query, at_least) in pages {
            let query = AuditQuery {
                limit: Some(100),
                ..query
            };
            let query = &query;
            rows.push(one(
                op,
                time(args.reps, |_| async move {
                    let page = store.query_audit(query).await.expect("page");
                    assert!(page.events.len() >= at_least, "{op}: {}", page.events.len());
                })
                .await,
            ));
        }
        let out = args.out.join("curated");
        let reps = (args.reps / 10).max(3);
        rows.push(one(
            "curation (the learn events among all)",
            time(reps, |_| {
                let out = out.clone();
                async move {
                    // Only the tells' learn events qualify; an empty dataset is refused as
                    // Invalid after the same scan, which is what is timed.
                    let _ = aura_forge::curate(
                        store.as_ref(),
                        &CurationConfig::for_persona("robin"),
                        &out,
                    )
                    .await;
                }
            })
            .await,
        ));
    }
}

fn report(out: &Path, rows: &[Row], notes: &[String]) {
    let mut csv = String::from("family,size,operation,median_us,p90_us,rss_mib\n");
    let mut md = String::from(
        "| direction | size | operation | median | p90 | RSS after |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},\"{}\",{:.1},{:.1},{:.1}",
            r.family, r.size, r.op, r.median_us, r.p90_us, r.rss_mib
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.0} MiB |",
            r.family,
            r.size,
            r.op,
            human(r.median_us),
            human(r.p90_us),
            r.rss_mib
        );
    }
    std::fs::write(out.join("scale.csv"), &csv).expect("scale.csv");
    std::fs::write(out.join("scale.md"), &md).expect("scale.md");
    println!("{md}");
    for family in ["methods", "memory nodes", "audit events"] {
        let mut series: Vec<Series> = Vec::new();
        for r in rows.iter().filter(|r| r.family == family) {
            match series.iter_mut().find(|s| s.label == r.op) {
                Some(s) => s.points.push((r.size as f64, r.median_us / 1000.0)),
                None => series.push(Series {
                    label: r.op.to_owned(),
                    points: vec![(r.size as f64, r.median_us / 1000.0)],
                }),
            }
        }
        let file = out.join(format!("scale-{}.png", family.replace(' ', "-")));
        let chart = Chart {
            title: &format!("AURA: cost against {family}"),
            x_label: family,
            y_label: "median ms",
            log_x: true,
            log_y: true,
            whole_x: false,
        };
        match line_chart(&file, &chart, &series) {
            Ok(()) => eprintln!("chart: {}", file.display()),
            Err(why) => eprintln!("no chart for {family}: {why}"),
        }
    }
    goals(rows, notes);
}

fn human(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn median_of(rows: &[Row], op: &str, size: Option<usize>) -> Option<(usize, f64)> {
    let mut of: Vec<&Row> = rows.iter().filter(|r| r.op == op).collect();
    of.sort_by_key(|r| r.size);
    let row = match size {
        Some(s) => of.into_iter().find(|r| r.size == s)?,
        None => *of.last()?,
    };
    Some((row.size, row.median_us))
}

fn goals(rows: &[Row], notes: &[String]) {
    println!("Goals (issue #23):");
    let sends: Vec<&Row> = rows.iter().filter(|r| r.op == "send").collect();
    if let (Some(first), Some(last)) = (sends.first(), sends.last()) {
        let ratio = last.median_us / first.median_us;
        println!(
            "- a call at {} methods costs {:.2}× a call at {} (goal ≤ 1.10×): {}",
            last.size,
            ratio,
            first.size,
            verdict(ratio <= 1.10)
        );
    }
    if let Some((size, us)) = median_of(rows, "grounding search (8 hits)", None) {
        println!(
            "- grounding search at {size} nodes: {} (goal ≤ 5 ms): {}",
            human(us),
            verdict(us <= 5000.0)
        );
    }
    if let Some((size, us)) = median_of(rows, "audit page (100, from the middle)", None) {
        println!(
            "- audit paging at {size} events: {} per page (goal ≤ 5 ms): {}",
            human(us),
            verdict(us <= 5000.0)
        );
    }
    for note in notes {
        println!("- {note}");
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}
