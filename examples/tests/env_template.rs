//! `.env.template` against the code: every setting the code reads is listed, every listed
//! setting is read, and every default the template shows is the code's default.
//!
//! The template's convention: `#NAME=value` (or `NAME=value`) shows the default;
//! `#NAME=` means no fixed default. A default is checked by asking each "reader" (a
//! function of the code that turns settings into a configuration) for its result with
//! no settings, and with the template's values: they must be the same. When they differ,
//! each value is tried alone to name the setting whose default is wrong.
//!
//! One test in this binary, because the readers that take the process environment need
//! it to themselves.
#![allow(clippy::expect_used)] // a test that cannot read its inputs should panic loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Settings the sources read that are not user settings, and why.
const NOT_SETTINGS: &[(&str, &str)] = &[
    (
        "AURA_CONFORMANCE_SECRET",
        "set by the sandbox conformance suite to check that a guest sees no environment",
    ),
    ("HOME", "the operating system's, for the XDG data directory"),
    (
        "XDG_DATA_HOME",
        "the XDG base directory, documented under AURA_MODEL_PATH",
    ),
    (
        "XDG_DATA_DIRS",
        "the XDG base directory, documented under AURA_MODEL_PATH",
    ),
    (
        "AURA_TEST_OPENAI_URL",
        "the test suite's: an OpenAI-compatible server to test against (README, tests)",
    ),
    (
        "AURA_TEST_OPENAI_MODEL",
        "the test suite's: the model AURA_TEST_OPENAI_URL serves (README, tests)",
    ),
];

/// Settings the template lists that a library reads for us (so no literal names them).
const READ_BY_LIBRARIES: &[(&str, &str)] = &[(
    "RUST_LOG",
    "tracing-subscriber's EnvFilter::try_from_default_env, in aura-examples",
)];

fn workspace() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .parent()
    .expect("examples/ has a parent")
    .to_path_buf()
}

/// `NAME -> value` for every `NAME=value` or `#NAME=value` line of the template.
fn template() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(workspace().join(".env.template")).expect("read .env.template");
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.strip_prefix('#').unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty()
            || !name.starts_with(|c: char| c.is_ascii_uppercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let previous = vars.insert(name.to_string(), value.trim().to_string());
        assert!(previous.is_none(), ".env.template lists {name} twice");
    }
    vars
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn is_name(s: &str) -> bool {
    s.len() > 1
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The settings the code reads: in Rust and Python sources every `"AURA_…"` literal and
/// every literal passed to `var(…)`, `var_os(…)` or `get(…)`; in the scripts every
/// `$AURA_…` expansion. Each with the first file that reads it.
fn read_by_code() -> BTreeMap<String, PathBuf> {
    let root = workspace();
    let mut sources = Vec::new();
    for krate in [
        "aura-core",
        "aura-store",
        "aura-cognition",
        "aura-guard",
        "aura-sandbox",
        "aura-forge",
        "aura-gateway",
        "examples",
        "bindings/python",
    ] {
        files(&root.join(krate).join("src"), "rs", &mut sources);
    }
    files(&root.join("bindings/python/python"), "py", &mut sources);
    let mut scripts = Vec::new();
    files(&root.join("scripts"), "sh", &mut scripts);
    assert!(
        sources.len() > 20 && !scripts.is_empty(),
        "found too few sources under {}",
        root.display()
    );

    let mut found = BTreeMap::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("read a source");
        // Every double-quoted literal with what precedes it.
        let mut rest = text.as_str();
        while let Some(open) = rest.find('"') {
            let prefix = &rest[..open];
            let after = &rest[open + 1..];
            let Some(close) = after.find('"') else { break };
            let literal = &after[..close];
            let call = prefix.trim_end().ends_with("var(")
                || prefix.trim_end().ends_with("var_os(")
                || prefix.trim_end().ends_with("get(");
            if is_name(literal) && (literal.starts_with("AURA_") || call) {
                found
                    .entry(literal.to_string())
                    .or_insert_with(|| path.clone());
            }
            rest = &after[close + 1..];
        }
    }
    for path in &scripts {
        let text = std::fs::read_to_string(path).expect("read a script");
        for (i, _) in text.match_indices("AURA_") {
            let prefix = &text[..i];
            if !(prefix.ends_with('$') || prefix.ends_with("${")) {
                continue;
            }
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            found.entry(name).or_insert_with(|| path.clone());
        }
    }
    found
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A function of the code that turns settings into a configuration, shown as text.
struct Reader {
    name: &'static str,
    /// What it reads from the process environment (the lookup readers report theirs).
    reads_env: &'static [&'static str],
    /// Settings given in both runs, to reach code behind them (a provider's key).
    enable: &'static [(&'static str, &'static str)],
    read: Option<fn(Lookup<'_>) -> String>,
    /// Why `read` is `None` in this build.
    skipped: &'static str,
}

fn readers() -> Vec<Reader> {
    vec![
        Reader {
            name: "aura_core::Config::from_lookup",
            reads_env: &[],
            enable: &[],
            read: Some(|get| format!("{:?}", aura_core::Config::from_lookup(get))),
            skipped: "",
        },
        Reader {
            name: "aura_gateway::GatewayConfig::from_lookup",
            reads_env: &[],
            enable: &[],
            read: Some(|get| format!("{:?}", aura_gateway::GatewayConfig::from_lookup(get))),
            skipped: "",
        },
        Reader {
            name: "aura_cognition::ContextIngestorBuilder::from_vars",
            reads_env: &[],
            enable: &[
                ("IP2LOCATION_KEY", "k"),
                ("NEWSAPI_KEY", "k"),
                ("API_NINJAS_KEY", "k"),
            ],
            read: Some(|get| {
                format!(
                    "{:?}",
                    aura_core::cognition::ContextIngestorBuilder::from_vars(get)
                )
            }),
            skipped: "",
        },
        Reader {
            name: "aura_cognition::LocalModelBuilder::from_env",
            reads_env: &[
                "AURA_MODEL_PATH",
                "AURA_ROOT",
                "AURA_MODEL_THREADS",
                "AURA_MODEL_CONTEXT",
            ],
            enable: &[],
            read: Some(|_| format!("{:?}", aura_core::cognition::LocalModelBuilder::from_env())),
            skipped: "",
        },
        Reader {
            name: "aura_sandbox::JailSandboxBuilder::from_env",
            reads_env: &["AURA_SANDBOX_PYTHON", "AURA_SANDBOX_MAX_CONCURRENT"],
            enable: &[],
            read: Some(|_| format!("{:?}", aura_core::sandbox::JailSandboxBuilder::from_env())),
            skipped: "",
        },
        Reader {
            name: "aura_forge::LocalForgeBuilder::from_env",
            reads_env: &["AURA_FORGE_PYTHON", "AURA_FORGE_THREADS"],
            enable: &[],
            read: Some(|_| format!("{:?}", aura_core::forge::LocalForgeBuilder::from_env())),
            skipped: "",
        },
        Reader {
            name: "aura_examples::log_dir",
            reads_env: &["AURA_LOG_DIR"],
            enable: &[],
            read: Some(|_| format!("{:?}", aura_examples::log_dir(None))),
            skipped: "",
        },
        Reader {
            name: "aura_examples::store_backend",
            reads_env: &["AURA_STORE"],
            enable: &[],
            read: Some(|_| aura_examples::store_backend()),
            skipped: "",
        },
        Reader {
            name: "aura_cognition::OllamaModelBuilder::from_env",
            reads_env: &[
                "OLLAMA_HOST",
                "AURA_OLLAMA_MODEL",
                "AURA_OLLAMA_EMBED_MODEL",
                "AURA_OLLAMA_KEEP_ALIVE",
                "AURA_OLLAMA_TIMEOUT_SECS",
            ],
            enable: &[],
            #[cfg(feature = "ollama")]
            read: Some(|_| format!("{:?}", aura_cognition::OllamaModelBuilder::from_env())),
            #[cfg(not(feature = "ollama"))]
            read: None,
            skipped: "built without the feature `ollama`",
        },
        Reader {
            name: "aura_cognition::OpenAiModelBuilder::with_lookup",
            reads_env: &[],
            enable: &[],
            read: Some(|get| {
                format!(
                    "{:?}",
                    aura_core::cognition::OpenAiModelBuilder::with_lookup("http://h/v1", "m", get)
                )
            }),
            skipped: "",
        },
        Reader {
            name: "aura_sandbox::DockerSandboxBuilder::from_env",
            reads_env: &["AURA_SANDBOX_IMAGE"],
            enable: &[],
            #[cfg(feature = "docker")]
            read: Some(|_| format!("{:?}", aura_core::sandbox::DockerSandboxBuilder::from_env())),
            #[cfg(not(feature = "docker"))]
            read: None,
            skipped: "built without the feature `docker`",
        },
        Reader {
            name: "aura_store::ArangoStoreBuilder::from_env",
            reads_env: &["ARANGO_HOST", "ARANGO_USER", "ARANGO_PASS", "DB_NAME"],
            enable: &[],
            #[cfg(feature = "arangodb")]
            read: Some(|_| format!("{:?}", aura_store::ArangoStoreBuilder::from_env())),
            #[cfg(not(feature = "arangodb"))]
            read: None,
            skipped: "built without the feature `arangodb`",
        },
    ]
}

/// Runs `read` with exactly `vars` set, in the process environment and in the lookup;
/// returns its result and the names the lookup was asked for.
fn run(
    read: fn(Lookup<'_>) -> String,
    vars: &BTreeMap<String, String>,
    clear: &BTreeSet<String>,
) -> (String, BTreeSet<String>) {
    for name in clear {
        std::env::remove_var(name);
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let asked = Mutex::new(BTreeSet::new());
    let get = |k: &str| {
        asked.lock().expect("lock").insert(k.to_string());
        vars.get(k).cloned()
    };
    let out = read(&get);
    for name in vars.keys() {
        std::env::remove_var(name);
    }
    (out, asked.into_inner().expect("lock"))
}

#[test]
fn the_template_lists_every_setting_with_the_codes_defaults() {
    let template = template();
    let code = read_by_code();
    let not_settings: BTreeMap<_, _> = NOT_SETTINGS.iter().copied().collect();
    let by_libraries: BTreeMap<_, _> = READ_BY_LIBRARIES.iter().copied().collect();
    let mut problems = Vec::new();

    // 1. Every setting the code reads is in the template.
    for (name, file) in &code {
        if !template.contains_key(name) && !not_settings.contains_key(name.as_str()) {
            problems.push(format!(
                "{name} is read by {} but missing from .env.template",
                file.display()
            ));
        }
    }
    // 2. Every setting in the template is read, and the exclusions are still needed.
    for name in template.keys() {
        if !code.contains_key(name) && !by_libraries.contains_key(name.as_str()) {
            problems.push(format!("{name} is in .env.template but no source reads it"));
        }
    }
    for (name, why) in NOT_SETTINGS {
        if !code.contains_key(*name) {
            problems.push(format!(
                "NOT_SETTINGS lists {name} ({why}), which nothing reads now"
            ));
        }
    }

    // 3. The defaults: with no settings and with the template's, each reader agrees.
    let values: BTreeMap<String, String> = template
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let clear: BTreeSet<String> = code.keys().chain(template.keys()).cloned().collect();
    let mut claimed = BTreeSet::new();
    for reader in readers() {
        claimed.extend(reader.reads_env.iter().map(|s| s.to_string()));
        let Some(read) = reader.read else {
            println!("skipped: {} ({})", reader.name, reader.skipped);
            continue;
        };
        let enable: BTreeMap<String, String> = reader
            .enable
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let with = |extra: &BTreeMap<String, String>| {
            let mut vars = enable.clone();
            vars.extend(extra.clone());
            run(read, &vars, &clear)
        };
        let (base, _) = with(&BTreeMap::new());
        let (all, asked) = with(&values);
        claimed.extend(asked);
        if base != all {
            let mut named = false;
            for (name, value) in &values {
                let one = BTreeMap::from([(name.clone(), value.clone())]);
                if with(&one).0 != base {
                    named = true;
                    problems.push(format!(
                        ".env.template shows {name}={value}, which is not the default of {}",
                        reader.name
                    ));
                }
            }
            if !named {
                problems.push(format!(
                    "{}: the template's values together differ from its defaults\n  defaults: {base}\n  template: {all}",
                    reader.name
                ));
            }
        }
    }
    // Every default the template shows is checked by some reader (or belongs to a
    // script, which reads it from the environment only and shows none).
    for name in values.keys() {
        if !claimed.contains(name) {
            problems.push(format!(
                ".env.template shows a default for {name}, but no reader in this test checks it: add one"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{} problem(s):\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}
