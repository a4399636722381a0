//! `aura`: a client of the API gateway — a REPL, or one message for scripts.
//!
//! ```text
//! aura                                        # the REPL (line editing, history)
//! aura -- "calculate fibonacci for 10"        # one message, then exit
//! aura --object calc -- "teach yourself to add two numbers"
//! ```
//!
//! Exit codes (one-shot mode, and the REPL's last request when stdin is not a terminal):
//! 0 ok · 1 refused, not understood or another request error · 2 usage ·
//! 3 gateway unreachable or unavailable · 4 authentication failed.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use aura_core::forge::trail::{ForgeFailed, ForgeFinished, Payload};
use aura_core::store::AuditEvent;
use clap::Parser;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Talk to AURA's objects through the API gateway.
#[derive(Parser, Debug)]
#[command(name = "aura", version)]
struct Args {
    /// The gateway's URL [env: AURA_URL; default http://<AURA_GATEWAY_ADDR>].
    #[arg(long)]
    url: Option<String>,
    /// The object to talk to (created when missing).
    #[arg(long, short, default_value = "aura")]
    object: String,
    /// Do not show the monologue while a request runs.
    #[arg(long, short)]
    quiet: bool,
    /// The message to send (one-shot mode); without it, the REPL starts.
    #[arg(last = true)]
    message: Vec<String>,
}

/// What a request's outcome means for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok = 0,
    Failed = 1,
    Unreachable = 3,
    Unauthorized = 4,
}

/// A failed request, printed for people and mapped to an exit code.
struct Failure {
    outcome: Outcome,
    text: String,
}

impl Failure {
    fn transport(e: reqwest::Error) -> Self {
        Failure {
            outcome: Outcome::Unreachable,
            text: format!("cannot reach the gateway: {e}"),
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    quiet: bool,
}

impl Client {
    /// `GET /v1/health`, whatever its status (503 still carries the checks).
    async fn health(&self) -> Result<Value, Failure> {
        let r = self
            .http
            .get(format!("{}/v1/health", self.base))
            .send()
            .await
            .map_err(Failure::transport)?;
        Ok(r.json().await.unwrap_or(Value::Null))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a request and reads its JSON, turning error replies into a [`Failure`].
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request.send().await.map_err(Failure::transport)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let outcome = match status {
            StatusCode::UNAUTHORIZED => Outcome::Unauthorized,
            s if s.is_server_error() => Outcome::Unreachable,
            _ => Outcome::Failed,
        };
        Err(Failure {
            outcome,
            text: describe_error(status, &body),
        })
    }

    /// Makes sure `name` exists (creating it on first use).
    async fn ensure_object(&self, name: &str) -> Result<(), Failure> {
        let got = self
            .call(self.request(reqwest::Method::GET, &format!("/v1/objects/{name}")))
            .await;
        match got {
            Err(f) if f.outcome == Outcome::Failed => {
                self.call(
                    self.request(reqwest::Method::POST, "/v1/objects")
                        .json(&json!({ "name": name })),
                )
                .await?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Runs `work` under a spinner (`template`, first showing `message`) into which the
    /// monologue streams unless `--quiet`; the spinner is cleared afterwards.
    async fn narrated<T, Fut>(
        &self,
        template: &str,
        message: &str,
        work: impl FnOnce(ProgressBar) -> Fut,
    ) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner.set_message(message.to_string());
        let monologue = if self.quiet {
            None
        } else {
            self.follow_monologue(spinner.clone()).await
        };
        let result = work(spinner.clone()).await;
        if let Some(task) = monologue {
            task.abort();
        }
        spinner.finish_and_clear();
        result
    }

    /// Sends `body` to `object`, showing the monologue live while it runs.
    /// Prints every selector `object` responds to, a page at a time, with its definer.
    async fn list_selectors(&self, object: &str, own: bool) -> Result<Outcome, Failure> {
        let path = format!("/v1/objects/{object}/selectors");
        let mut offset = 0u64;
        loop {
            let page = self
                .call(self.request(reqwest::Method::GET, &path).query(&[
                    ("offset", offset.to_string()),
                    ("limit", "1000".to_string()),
                    ("own", own.to_string()),
                ]))
                .await?;
            for e in page["selectors"].as_array().into_iter().flatten() {
                println!(
                    "{} v{} ({})",
                    e["selector"].as_str().unwrap_or("?"),
                    e["version"],
                    e["defined_on"].as_str().unwrap_or("?")
                );
            }
            match page["next_offset"].as_u64() {
                Some(next) => offset = next,
                None => {
                    println!("{} in all", page["total"]);
                    return Ok(Outcome::Ok);
                }
            }
        }
    }

    async fn send(&self, object: &str, body: Value) -> Result<Value, Failure> {
        let path = format!("/v1/objects/{object}/messages");
        self.narrated("{spinner} {msg}", "thinking…", |_| {
            self.call(self.request(reqwest::Method::POST, &path).json(&body))
        })
        .await
    }

    /// Starts a forge run and waits for its end in the audit trail, showing the
    /// monologue (training steps and their loss) meanwhile. Ctrl-C stops the waiting,
    /// not the run.
    async fn forge(&self, body: Value) -> Result<Outcome, Failure> {
        self.narrated("{spinner} {msg} [{elapsed}]", "", |spinner| async move {
            let started = self
                .call(self.request(reqwest::Method::POST, "/v1/forge").json(&body))
                .await?;
            let facet = started["facet"].as_str().unwrap_or_default().to_string();
            spinner.println(format!(
                "{facet}: forging (Ctrl-C stops waiting, not the run)"
            ));
            spinner.set_message(format!("forging {facet}…"));
            self.wait_forge(&facet).await
        })
        .await
    }

    /// Polls the audit trail until `facet`'s run finished or failed, and says how it went.
    async fn wait_forge(&self, facet: &str) -> Result<Outcome, Failure> {
        loop {
            let page = self
                .call(
                    self.request(reqwest::Method::GET, "/v1/audit")
                        .query(&[("kind", "forge.*"), ("limit", "1000")]),
                )
                .await?;
            let events: Vec<AuditEvent> =
                serde_json::from_value(page["events"].clone()).unwrap_or_default();
            for e in events.iter().filter(|e| e.payload["facet"] == facet) {
                if let Some(failed) = ForgeFailed::read(e) {
                    return Err(Failure {
                        outcome: Outcome::Failed,
                        text: format!("forging {facet} failed: {}", failed.error),
                    });
                }
                let Some(done) = ForgeFinished::read(e) else {
                    continue;
                };
                println!("{facet} registered ({} examples)", done.examples);
                if let Some(ev) = done.evaluation {
                    println!(
                        "  validation loss {} → {}, probe loss {} → {}",
                        ev.base_validation_loss,
                        ev.facet_validation_loss,
                        ev.base_probe_loss,
                        ev.facet_probe_loss
                    );
                }
                match done.not_promoted {
                    _ if done.promoted => println!("  promoted: it now serves its persona"),
                    Some(why) => println!("  not promoted: {why}"),
                    None => println!("  not promoted (not asked to)"),
                }
                return Ok(Outcome::Ok);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Streams `GET /v1/events` into the spinner until aborted; `None` when unavailable.
    async fn follow_monologue(&self, spinner: ProgressBar) -> Option<tokio::task::JoinHandle<()>> {
        // Subscribed once the headers arrive, so nothing the request says is missed.
        let response = self
            .request(reqwest::Method::GET, "/v1/events")
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())?;
        let show_lines = !std::io::stderr().is_terminal();
        Some(tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                        continue;
                    };
                    if event["component"] == "Gateway" {
                        continue;
                    }
                    let line = format!(
                        "{}: {}",
                        event["component"].as_str().unwrap_or("?"),
                        event["message"].as_str().unwrap_or("")
                    );
                    if show_lines {
                        eprintln!("  · {line}");
                    } else {
                        spinner.println(format!("  · {line}"));
                        spinner.set_message(line);
                    }
                }
            }
        }))
    }
}

/// `error [code]: message`, with the guard's violations or the learn's failures when given.
fn describe_error(status: StatusCode, body: &Value) -> String {
    let e = &body["error"];
    let mut text = format!(
        "error [{}]: {}",
        e["code"].as_str().unwrap_or(status.as_str()),
        e["message"]
            .as_str()
            .unwrap_or(status.canonical_reason().unwrap_or("request failed"))
    );
    let details = &e["details"];
    for v in details["violations"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  - {} {}",
            v["rule"].as_str().unwrap_or("?"),
            v["message"].as_str().unwrap_or("")
        ));
    }
    for f in details["failures"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  - {}: {}",
            f["stage"].as_str().unwrap_or("?"),
            f["message"].as_str().unwrap_or("")
        ));
    }
    text
}

/// Prints a reply readably; a refused learn counts as a failure.
fn print_reply(body: &Value) -> Outcome {
    if let Some(reply) = body.get("reply") {
        println!("{}", reply["text"].as_str().unwrap_or_default());
        if reply["refused"] == true {
            return Outcome::Failed;
        }
    } else {
        let value = &body["value"];
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
    Outcome::Ok
}

const HELP: &str = "Type a message for the object, or a command:
  :call SELECTOR [ARG…]      call a method with JSON arguments (e.g. :call fibonacci 10)
  :object NAME               talk to another object (created when missing)
  :methods [own]             the selectors this object responds to (own: only its own),
                             each with the object that defines it
  :versions SELECTOR         list a method's versions
  :rollback SELECTOR VERSION make an earlier version current
  :memory QUERY              search the memory graph
  :audit [KIND]              the latest audit events (e.g. :audit learn.*)
  :forge PERSONA [STEPS]     fine-tune a persona's facet from the audit trail, and wait
  :facets                    the facets, and which one serves each persona
  :promote FACET             make a facet its persona's default (if it beats its base)
  :demote PERSONA            undo a persona's last promotion
  :models                    which backend serves each persona, and whether it answers
  :health                    the gateway's health checks
  :help  :quit               (Ctrl-C cancels a running request; Ctrl-D quits)";

/// Runs one REPL line; `None` means quit.
async fn run_line(client: &Client, object: &mut String, line: &str) -> Option<Outcome> {
    let line = line.trim();
    if line.is_empty() {
        return Some(Outcome::Ok);
    }
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let result: Result<Outcome, Failure> = match command {
        ":quit" | ":q" | ":exit" => return None,
        ":help" | ":h" => {
            println!("{HELP}");
            Ok(Outcome::Ok)
        }
        ":object" if !rest.is_empty() => client.ensure_object(rest).await.map(|()| {
            *object = rest.to_string();
            println!("now talking to `{object}`");
            Outcome::Ok
        }),
        ":call" if !rest.is_empty() => {
            let mut words = rest.split_whitespace();
            let selector = words.next().unwrap_or_default();
            let args: Vec<Value> = words
                .map(|w| serde_json::from_str(w).unwrap_or_else(|_| Value::String(w.into())))
                .collect();
            client
                .send(object, json!({ "selector": selector, "args": args }))
                .await
                .map(|b| print_reply(&b))
        }
        ":methods" if rest.is_empty() || rest == "own" => {
            client.list_selectors(object, rest == "own").await
        }
        ":versions" if !rest.is_empty() => client
            .call(client.request(
                reqwest::Method::GET,
                &format!("/v1/objects/{object}/methods/{rest}"),
            ))
            .await
            .map(|b| {
                for v in b["versions"].as_array().into_iter().flatten() {
                    let current = if v["version"] == b["current"] {
                        "*"
                    } else {
                        " "
                    };
                    println!(
                        "{current} v{} {} ({})",
                        v["version"],
                        v["doc"].as_str().unwrap_or(""),
                        v["created_at"].as_str().unwrap_or("")
                    );
                }
                Outcome::Ok
            }),
        ":rollback" => match rest
            .split_once(' ')
            .map(|(s, v)| (s, v.trim().parse::<u32>()))
        {
            Some((selector, Ok(version))) => client
                .call(
                    client
                        .request(
                            reqwest::Method::POST,
                            &format!("/v1/objects/{object}/methods/{selector}/rollback"),
                        )
                        .json(&json!({ "version": version })),
                )
                .await
                .map(|b| {
                    println!("{selector} is at version {} again", b["version"]);
                    Outcome::Ok
                }),
            _ => Err(Failure {
                outcome: Outcome::Failed,
                text: "usage: :rollback SELECTOR VERSION".into(),
            }),
        },
        ":memory" if !rest.is_empty() => client
            .call(
                client
                    .request(reqwest::Method::GET, "/v1/memory")
                    .query(&[("q", rest)]),
            )
            .await
            .map(|b| {
                for h in b["hits"].as_array().into_iter().flatten() {
                    let text = h["node"]["text"].as_str().unwrap_or("");
                    println!(
                        "- ({}) {}",
                        h["node"]["kind"].as_str().unwrap_or("?"),
                        text.lines().next().unwrap_or("")
                    );
                }
                Outcome::Ok
            }),
        ":audit" => {
            let mut query = vec![("limit", "1000".to_string())];
            if !rest.is_empty() {
                query.push(("kind", rest.to_string()));
            }
            client
                .call(
                    client
                        .request(reqwest::Method::GET, "/v1/audit")
                        .query(&query),
                )
                .await
                .map(|b| {
                    let events = b["events"].as_array().cloned().unwrap_or_default();
                    for e in events.iter().rev().take(20).rev() {
                        println!(
                            "{} {}",
                            e["at"].as_str().unwrap_or(""),
                            e["kind"].as_str().unwrap_or("")
                        );
                    }
                    Outcome::Ok
                })
        }
        ":forge" if !rest.is_empty() => {
            let mut words = rest.split_whitespace();
            let mut body = json!({ "persona": words.next().unwrap_or_default() });
            if let Some(steps) = words.next() {
                match steps.parse::<u32>() {
                    Ok(n) => body["steps"] = json!(n),
                    Err(_) => {
                        println!("usage: :forge PERSONA [STEPS]");
                        return Some(Outcome::Failed);
                    }
                }
            }
            client.forge(body).await
        }
        ":facets" => client
            .call(client.request(reqwest::Method::GET, "/v1/facets"))
            .await
            .map(|b| {
                for f in b["facets"].as_array().into_iter().flatten() {
                    println!(
                        "{} ({}) {}",
                        f["name"].as_str().unwrap_or("?"),
                        f["metrics"]["status"].as_str().unwrap_or("?"),
                        f["created_at"].as_str().unwrap_or("")
                    );
                }
                for (persona, facet) in b["serving"].as_object().into_iter().flatten() {
                    println!("{persona}: {}", facet.as_str().unwrap_or("base model"));
                }
                println!("stagnation: {}", b["stagnation"]);
                Outcome::Ok
            }),
        ":promote" if !rest.is_empty() => client
            .call(client.request(reqwest::Method::POST, &format!("/v1/facets/{rest}/promote")))
            .await
            .map(|_| {
                println!("{rest} is promoted");
                Outcome::Ok
            }),
        ":demote" if !rest.is_empty() => client
            .call(client.request(
                reqwest::Method::POST,
                &format!("/v1/personas/{rest}/rollback"),
            ))
            .await
            .map(|b| {
                println!(
                    "{rest} is served by {}",
                    b["serving"].as_str().unwrap_or("its base model")
                );
                Outcome::Ok
            }),
        ":models" => client.health().await.map(|body| {
            let models = body["checks"]["models"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (persona, check) in models {
                let detail = &check["detail"];
                let backend = detail["backend"]
                    .as_str()
                    .map(|b| format!("{b} ({})", detail["model"].as_str().unwrap_or("?")))
                    .unwrap_or_else(|| detail.as_str().unwrap_or_default().to_string());
                let status = check["status"].as_str().unwrap_or("?");
                println!("{persona:<7} {status:<11} {backend}");
            }
            Outcome::Ok
        }),
        ":health" => client.health().await.map(|body| {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_else(|_| body.to_string())
            );
            Outcome::Ok
        }),
        c if c.starts_with(':') => Err(Failure {
            outcome: Outcome::Failed,
            text: format!("unknown command {c} (try :help)"),
        }),
        _ => client
            .send(object, json!({ "text": line }))
            .await
            .map(|b| print_reply(&b)),
    };
    Some(match result {
        Ok(outcome) => outcome,
        Err(f) => {
            println!("{}", f.text);
            f.outcome
        }
    })
}

/// One line with Ctrl-C cancelling the request, not the client.
async fn run_cancellable(client: &Client, object: &mut String, line: &str) -> Option<Outcome> {
    tokio::select! {
        outcome = run_line(client, object, line) => outcome,
        _ = tokio::signal::ctrl_c() => {
            println!("cancelled (a learn or forge run already started goes on in the gateway)");
            Some(Outcome::Failed)
        }
    }
}

fn history_path() -> std::path::PathBuf {
    std::env::var_os("AURA_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "data".into())
        .join("cli_history.txt")
}

fn repl(runtime: &tokio::runtime::Runtime, client: &Client, mut object: String) -> Outcome {
    let mut last = Outcome::Ok;
    if !std::io::stdin().is_terminal() {
        // Scripted session: one request per line, echoed, no line editing.
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            println!("> {line}");
            match runtime.block_on(run_cancellable(client, &mut object, &line)) {
                Some(outcome) => last = outcome,
                None => break,
            }
            let _ = std::io::stdout().flush();
        }
        return last;
    }
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("aura: no line editor: {e}");
            return Outcome::Failed;
        }
    };
    let history = history_path();
    let _ = editor.load_history(&history);
    println!(
        "AURA at {} — talking to `{object}`. :help for commands.",
        client.base
    );
    loop {
        match editor.readline(&format!("{object}> ")) {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                match runtime.block_on(run_cancellable(client, &mut object, &line)) {
                    Some(outcome) => last = outcome,
                    None => break,
                }
            }
            // Ctrl-C at the prompt clears the line; Ctrl-D leaves.
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(&history);
    last
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("aura: ignoring unreadable .env: {e}");
        }
    }
    let base = args
        .url
        .clone()
        .or_else(|| std::env::var("AURA_URL").ok())
        .unwrap_or_else(|| {
            let addr = std::env::var("AURA_GATEWAY_ADDR")
                .unwrap_or_else(|_| aura_gateway::DEFAULT_ADDR.into());
            format!("http://{addr}")
        })
        .trim_end_matches('/')
        .to_string();
    let client = Client {
        http: reqwest::Client::new(),
        base,
        token: std::env::var("AURA_GATEWAY_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty()),
        quiet: args.quiet,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aura: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(f) = runtime.block_on(client.ensure_object(&args.object)) {
        eprintln!("aura: {}", f.text);
        return ExitCode::from(f.outcome as u8);
    }
    let outcome = if args.message.is_empty() {
        repl(&runtime, &client, args.object)
    } else {
        let mut object = args.object;
        let line = args.message.join(" ");
        runtime
            .block_on(run_cancellable(&client, &mut object, &line))
            .unwrap_or(Outcome::Ok)
    };
    ExitCode::from(outcome as u8)
}
