//! Genesis: idempotent initialisation of an AURA installation.
//!
//! Creates the store's schema and the genesis root object (SQLite at `AURA_STORE_PATH`
//! by default; ArangoDB when `AURA_STORE=arangodb` and built with `--features arangodb`),
//! checks the backend each persona is served by (`AURA_MODEL`, `AURA_MODEL_<PERSONA>`):
//! a local GGUF file is there, an Ollama model is pulled (missing ones are pulled with a
//! progress bar), an OpenAI-compatible server serves its model — or, without those
//! settings, the embedded model's file. It checks each registered LoRA facet's adapter
//! and which facet serves each persona, and whether the forge can train here. It reports what it did; a second
//! run changes nothing and says so.

use std::process::ExitCode;

use aura_core::store::{DynStore, NewObject, SqliteStore, StoreExt};
use aura_core::Config;
use clap::Parser;

/// Initialise AURA: store schema, root object, models, facets. Safe to run again.
#[derive(Parser, Debug)]
#[command(name = "genesis", version)]
struct Args {
    /// Only check; change nothing.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    models: aura_examples::ModelArgs,
}

/// What genesis found and did.
#[derive(Default)]
struct Report {
    done: Vec<String>,
    present: Vec<String>,
    problems: Vec<String>,
}

async fn open_store(config: &Config, check: bool, report: &mut Report) -> Result<DynStore, String> {
    if let Some(store) = aura_examples::configured_store().await? {
        report
            .present
            .push("store: ArangoDB (schema set up idempotently on connect)".into());
        return Ok(store);
    }
    let path = &config.store_path;
    let existed = path.as_os_str() == ":memory:" || path.exists();
    if !existed {
        if check {
            return Err(format!("no store at {}", path.display()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    let store = SqliteStore::open(path)
        .await
        .map_err(|e| format!("SQLite store at {}: {e}", path.display()))?;
    if existed {
        report.present.push(format!(
            "store: SQLite at {} (schema current)",
            path.display()
        ));
    } else {
        report.done.push(format!(
            "created the SQLite store and its schema at {}",
            path.display()
        ));
    }
    Ok(std::sync::Arc::new(store))
}

async fn ensure_root(
    store: &DynStore,
    name: &str,
    check: bool,
    report: &mut Report,
) -> Result<(), String> {
    if let Some(root) = store.find_object(name).await.map_err(|e| e.to_string())? {
        report
            .present
            .push(format!("root object `{name}` ({})", root.id));
        return Ok(());
    }
    if check {
        report.problems.push(format!("no root object `{name}`"));
        return Ok(());
    }
    let root = store
        .create_object(NewObject::named(name))
        .await
        .map_err(|e| e.to_string())?;
    report
        .done
        .push(format!("created the root object `{name}` ({})", root.id));
    Ok(())
}

/// Pulls the Ollama models in `wanted` that the server lacks, with a progress bar.
#[cfg(feature = "ollama")]
async fn ollama_pull(wanted: Vec<String>, check: bool, report: &mut Report) {
    let model = match aura_cognition::OllamaModel::from_env() {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(format!("Ollama: {e}"));
            return;
        }
    };
    let installed = match model.list_models().await {
        Ok(list) => list.into_iter().map(|m| m.name).collect::<Vec<_>>(),
        Err(e) => {
            report.problems.push(format!("Ollama unreachable: {e}"));
            return;
        }
    };
    let mut wanted: Vec<String> = wanted
        .into_iter()
        // Ollama names a model without a tag `:latest`.
        .map(|w| {
            if w.contains(':') {
                w
            } else {
                format!("{w}:latest")
            }
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    for full in wanted {
        if installed.contains(&full) {
            report.present.push(format!("Ollama model {full}"));
            continue;
        }
        if check {
            report
                .problems
                .push(format!("Ollama model {full} is not pulled"));
            continue;
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let pulled = model
            .pull(&full, |p| {
                bar.set_message(format!("pulling {full}: {}", p.status));
                if let (Some(total), Some(done)) = (p.total, p.completed) {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            })
            .await;
        bar.finish_and_clear();
        match pulled {
            Ok(()) => report.done.push(format!("pulled the Ollama model {full}")),
            Err(e) => report.problems.push(format!("pulling {full} failed: {e}")),
        }
    }
}

#[cfg(not(feature = "ollama"))]
async fn ollama_pull(wanted: Vec<String>, _check: bool, report: &mut Report) {
    if !wanted.is_empty() {
        report.problems.push(format!(
            "Ollama models {wanted:?} are configured but this genesis was built without \
             `--features ollama`"
        ));
    }
}

/// Checks the backends the model settings name: each local file is there, each Ollama
/// model is pulled (pulling missing ones), each OpenAI-compatible server serves its
/// model. Without model settings: the embedded model, or `AURA_OLLAMA_MODEL`.
async fn models(config: &Config, check: bool, report: &mut Report) {
    use aura_core::cognition::ModelSpec;
    let aura_core::ModelChains { default, personas } = match config.models.chains() {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(e.to_string());
            return;
        }
    };
    let mut chains: Vec<(String, aura_core::cognition::ModelChain)> = personas
        .into_iter()
        .map(|(p, c)| (p.name().to_string(), c))
        .collect();
    if let Some(c) = default {
        chains.push(("every other persona".into(), c));
    }
    let mut wanted = Vec::new();
    if chains.is_empty() {
        match std::env::var("AURA_OLLAMA_MODEL") {
            Ok(name) => {
                wanted.push(name);
                wanted.extend(std::env::var("AURA_OLLAMA_EMBED_MODEL"));
            }
            Err(_) => local_model(report),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (who, chain) in &chains {
        report
            .present
            .push(format!("{who}: {chain} ({})", chain.setting));
        for spec in &chain.specs {
            if !seen.insert(spec.clone()) {
                continue;
            }
            match spec {
                ModelSpec::Local(path) if path.is_file() => report
                    .present
                    .push(format!("local model {}", path.display())),
                ModelSpec::Local(path) => report.problems.push(format!(
                    "{}: no model file at {}",
                    chain.setting,
                    path.display()
                )),
                ModelSpec::Ollama(name) => wanted.push(name.clone()),
                spec => match spec.open(&|k| std::env::var(k).ok()) {
                    Ok(m) => match m.info().await {
                        Ok(i) => report.present.push(format!("{spec} serves {}", i.name)),
                        Err(e) => report
                            .problems
                            .push(format!("{}: {spec}: {e}", chain.setting)),
                    },
                    Err(e) => report
                        .problems
                        .push(format!("{}: {spec}: {e}", chain.setting)),
                },
            }
        }
    }
    if !wanted.is_empty() {
        ollama_pull(wanted, check, report).await;
    }
}

fn local_model(report: &mut Report) {
    let path = aura_core::cognition::default_model_path();
    if path.exists() {
        report
            .present
            .push(format!("local model {}", path.display()));
    } else {
        report.problems.push(format!(
            "no local model at {} (scripts/setup.sh installs it; or set AURA_MODEL_PATH): learning is off",
            path.display()
        ));
    }
}

async fn facets(store: &DynStore, report: &mut Report) -> Result<(), String> {
    let serving = aura_core::forge::serving(store.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    for (persona, facet) in serving {
        if let Some(facet) = facet {
            report
                .present
                .push(format!("{persona} is served by {facet}"));
        }
    }
    let facets = aura_core::forge::facets(store.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    for facet in facets {
        let path = std::path::Path::new(&facet.adapter_path);
        // An adapter is a file path or a model name on a server; only paths can be checked here.
        if path.is_absolute() && !path.exists() {
            report.problems.push(format!(
                "facet {} ({}): adapter {} is missing",
                facet.name, facet.persona, facet.adapter_path
            ));
        } else {
            report
                .present
                .push(format!("facet {} for {}", facet.name, facet.persona));
        }
    }
    Ok(())
}

/// Whether the default forge (`LocalForge`) can train here.
fn forge(report: &mut Report) {
    let forge = aura_core::forge::LocalForge::from_env();
    if forge.python().is_file() {
        report.present.push(format!(
            "forge: LocalForge with {}",
            forge.python().display()
        ));
    } else {
        report.present.push(format!(
            "forge: no training venv at {} (AURA_SETUP_FORGE=1 scripts/setup.sh installs it): nothing will be forged",
            forge.python().display()
        ));
    }
}

async fn run(args: &Args) -> Result<Report, String> {
    let mut config = Config::from_env();
    args.models.apply(&mut config)?;
    let mut report = Report::default();
    let store = open_store(&config, args.check, &mut report).await?;
    ensure_root(&store, &config.root_object, args.check, &mut report).await?;
    models(&config, args.check, &mut report).await;
    facets(&store, &mut report).await?;
    forge(&mut report);
    Ok(report)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    aura_examples::init_tracing();
    let report = match run(&args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("genesis failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in &report.present {
        println!("ok      {line}");
    }
    for line in &report.done {
        println!("done    {line}");
    }
    for line in &report.problems {
        println!("warning {line}");
    }
    if report.done.is_empty() {
        println!("nothing to do: everything was already in place");
    } else {
        println!("genesis complete: {} change(s)", report.done.len());
    }
    ExitCode::SUCCESS
}
