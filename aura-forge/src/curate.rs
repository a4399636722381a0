//! BABS's golden dataset: chat-format JSONL curated from the audit trail.
//!
//! [`curate`] pages through the trail's `learn.*` events with [`Store::query_audit`]
//! (SQL on SQLite, AQL on ArangoDB: the port hides which) and keeps only what the system
//! got right:
//!
//! - **Selected**: `learn.committed` events whose recorded tests all passed (at least
//!   one test). From each, the contributions of the target persona that ALFRED kept:
//!   - BRICK and BABS (prose personas): their reply, when it has no error and is not
//!     empty: the accepted method was built on it.
//!   - ROBIN and ALFRED (candidate writers): their reply only when it is the one the
//!     search chose (`decided_by` of the committed sample's packet); the assistant
//!     turn is that reply as the model wrote it (a fenced code block), i.e. task →
//!     the code that passed every check.
//! - **Never selected**: `learn.attempt_failed` (guard rejections, failed tests, cascade
//!   errors) and `learn.refused` events, and committed events whose test record is
//!   missing or holds a failure. They are counted in the manifest, nothing more.
//!
//! Each example is three messages: the persona's system prompt, the user prompt as
//! the cascade showed it to that persona (rebuilt from the recorded packet by the
//! cascade's own `aura_cognition::cascade::user_prompt`, so it cannot drift) and the
//! persona's kept reply. Examples are scrubbed of secrets and
//! host paths ([`scrub`]), deduplicated on their scrubbed text (the oldest is kept), and
//! split by hash: an example's SHA-256 decides its split, so it stays in the same split
//! as the trail grows. The output — `train.jsonl`, `validation.jsonl` and
//! `manifest.json` — is byte-for-byte the same for the same trail.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aura_store::{AuditEvent, AuditQuery, EventId, Store, MAX_AUDIT_PAGE};

use crate::trail::{EventKind, LearnCommitted, Payload};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use aura_cognition::cascade::{packet_before_step, user_prompt};
use aura_cognition::{Persona, PromptSet};

use crate::{Error, Result};

/// The cascade's default evidence limit (`CascadeBuilder::evidence_limit`): how much
/// memory each recorded prompt showed.
const EVIDENCE_LIMIT: usize = 3;

/// The training split's file name.
pub const TRAIN_FILE: &str = "train.jsonl";
/// The validation split's file name.
pub const VALIDATION_FILE: &str = "validation.jsonl";
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The dataset format this module writes (recorded in the manifest).
pub const FORMAT: &str = "aura-forge/chat-jsonl/v1";

/// What to curate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurationConfig {
    /// The persona whose kept contributions become examples: `brick`, `robin`, `babs`
    /// or `alfred` (case-insensitive).
    pub persona: String,
    /// The system message of every example; `{selector}` is replaced by the example's
    /// selector. `None` uses a one-line description of the persona's role.
    ///
    /// Pass the persona's configured cascade prompt here so that training sees the
    /// system message the persona sees at run time.
    pub system_prompt: Option<String>,
    /// Validation share in per mille (default 200 = 20 %).
    pub validation_permille: u16,
    /// Audit events read per page (1..=1000).
    pub page_size: u32,
}

impl CurationConfig {
    /// Defaults for `persona`.
    pub fn for_persona(persona: impl Into<String>) -> Self {
        Self {
            persona: persona.into(),
            system_prompt: None,
            validation_permille: 200,
            page_size: MAX_AUDIT_PAGE,
        }
    }
}

/// How many events and examples curation saw, kept and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurationCounts {
    /// `learn.*` events read.
    pub events_read: u64,
    /// `learn.committed` events read.
    pub committed: u64,
    /// Committed events used (tests recorded, all passed).
    pub committed_passing: u64,
    /// Committed events dropped because their tests are missing or failed.
    pub committed_without_passing_tests: u64,
    /// `learn.attempt_failed` events (guard rejections, failed tests, cascade errors): never used.
    pub attempts_failed: u64,
    /// `learn.refused` events: never used.
    pub refused: u64,
    /// Contributions of the persona in used cycles that were not kept (an error, an
    /// empty reply, or a candidate that was not the one committed).
    pub contributions_not_kept: u64,
    /// Examples dropped as duplicates of an earlier one.
    pub duplicates: u64,
    /// Secrets replaced by `[REDACTED]`.
    pub secrets_scrubbed: u64,
    /// Host paths replaced by `<path>`.
    pub paths_scrubbed: u64,
}

/// One split's file, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitFile {
    /// The file name inside the dataset directory.
    pub file: String,
    /// How many examples (lines) it holds.
    pub examples: usize,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// The audit event each line came from, in line order.
    pub sources: Vec<EventId>,
}

/// `manifest.json`: what a dataset holds and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format ([`FORMAT`]).
    pub format: String,
    /// Who curated it (always BABS).
    pub curator: String,
    /// The persona it trains, lower-case.
    pub persona: String,
    /// Every audit event an example came from, oldest first, without repeats.
    pub source_events: Vec<EventId>,
    /// The training split.
    pub train: SplitFile,
    /// The validation split.
    pub validation: SplitFile,
    /// The split rule in words.
    pub split_rule: String,
    /// What was read, kept and dropped.
    pub counts: CurationCounts,
}

/// A curated dataset on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CuratedDataset {
    /// The directory holding the three files.
    pub dir: PathBuf,
    /// The manifest as written.
    pub manifest: Manifest,
}

/// A chat message in the dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// One line of a split file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// System, user and assistant turns.
    pub messages: Vec<Message>,
}

/// Curates `config.persona`'s golden dataset from `store`'s audit trail into `out_dir`.
///
/// Fails with [`Error::Invalid`] for an unknown persona or when no example qualifies
/// (an empty dataset cannot train anything). Files already in `out_dir` are replaced.
pub async fn curate(
    store: &dyn Store,
    config: &CurationConfig,
    out_dir: &Path,
) -> Result<CuratedDataset> {
    let persona: Persona = config
        .persona
        .parse()
        .map_err(|e: aura_cognition::Error| Error::Invalid(e.to_string()))?;
    let mut counts = CurationCounts::default();
    let mut seen = HashSet::new();
    let mut kept: Vec<(EventId, String, u64)> = Vec::new();
    let mut query = AuditQuery {
        kind: Some("learn.*".into()),
        limit: Some(config.page_size.clamp(1, MAX_AUDIT_PAGE)),
        ..AuditQuery::default()
    };
    loop {
        let page = store.query_audit(&query).await?;
        for event in &page.events {
            counts.events_read += 1;
            for example in examples_from(event, persona, config, &mut counts) {
                let line = serde_json::to_string(&example)
                    .map_err(|e| Error::Failed(format!("cannot serialise an example: {e}")))?;
                let digest: [u8; 32] = Sha256::digest(line.as_bytes()).into();
                if !seen.insert(digest) {
                    counts.duplicates += 1;
                    continue;
                }
                let mut bucket = [0u8; 8];
                bucket.copy_from_slice(&digest[..8]);
                kept.push((event.id, line, u64::from_be_bytes(bucket) % 1000));
            }
        }
        match page.next {
            Some(next) if !page.events.is_empty() => query.after = Some(next),
            _ => break,
        }
    }
    if kept.is_empty() {
        return Err(Error::Invalid(format!(
            "the audit trail holds no successful learn cycle with a kept {} contribution \
             ({} events read)",
            persona.name(),
            counts.events_read
        )));
    }

    let permille = u64::from(config.validation_permille.min(1000));
    let mut is_validation: Vec<bool> = kept.iter().map(|(_, _, b)| *b < permille).collect();
    // A run needs a validation loss to be judged: with two or more examples and a
    // non-zero share, the example with the lowest bucket joins validation if the hash
    // put none there (still deterministic; its bucket is the nearest to the cut).
    if permille > 0 && kept.len() >= 2 && !is_validation.contains(&true) {
        if let Some((i, _)) = kept.iter().enumerate().min_by_key(|(_, (_, _, b))| *b) {
            is_validation[i] = true;
        }
    }
    // And it needs something to train on: if the hash put everything in validation
    // (always possible with one example), the example with the highest bucket trains.
    if !is_validation.contains(&false) {
        if let Some((i, _)) = kept.iter().enumerate().max_by_key(|(_, (_, _, b))| *b) {
            is_validation[i] = false;
        }
    }

    tokio::fs::create_dir_all(out_dir)
        .await
        .map_err(|e| Error::io(out_dir, e))?;
    let mut train = (String::new(), Vec::new());
    let mut validation = (String::new(), Vec::new());
    for ((id, line, _), val) in kept.iter().zip(&is_validation) {
        let (text, sources) = if *val { &mut validation } else { &mut train };
        text.push_str(line);
        text.push('\n');
        sources.push(*id);
    }
    let train = write_split(out_dir, TRAIN_FILE, train).await?;
    let validation = write_split(out_dir, VALIDATION_FILE, validation).await?;
    let mut source_events = Vec::new();
    let mut seen_ids = HashSet::new();
    for (id, _, _) in &kept {
        if seen_ids.insert(*id) {
            source_events.push(*id);
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        curator: "BABS".into(),
        persona: persona.name().to_ascii_lowercase(),
        source_events,
        train,
        validation,
        split_rule: format!(
            "validation when the first 8 bytes of sha256(line), big-endian, mod 1000 < {permille} \
             (the lowest such value joins validation if none did)"
        ),
        counts,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::Failed(format!("cannot serialise the manifest: {e}")))?;
    let path = out_dir.join(MANIFEST_FILE);
    tokio::fs::write(&path, text + "\n")
        .await
        .map_err(|e| Error::io(&path, e))?;
    tracing::info!(target: "Forge", persona = %persona.name().to_ascii_lowercase(), train = manifest.train.examples,
        validation = manifest.validation.examples, dir = %out_dir.display(), "BABS curated a golden dataset");
    Ok(CuratedDataset {
        dir: out_dir.to_path_buf(),
        manifest,
    })
}

async fn write_split(
    dir: &Path,
    name: &str,
    (text, sources): (String, Vec<EventId>),
) -> Result<SplitFile> {
    let path = dir.join(name);
    tokio::fs::write(&path, text.as_bytes())
        .await
        .map_err(|e| Error::io(&path, e))?;
    Ok(SplitFile {
        file: name.into(),
        examples: sources.len(),
        sha256: hex(&Sha256::digest(text.as_bytes())),
        sources,
    })
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The examples one audit event yields for `persona` (none for anything but a
/// committed cycle whose tests all passed).
fn examples_from(
    event: &AuditEvent,
    persona: Persona,
    config: &CurationConfig,
    counts: &mut CurationCounts,
) -> Vec<Example> {
    match EventKind::parse(&event.kind) {
        Some(EventKind::LearnCommitted) => counts.committed += 1,
        Some(EventKind::LearnAttemptFailed) => {
            counts.attempts_failed += 1;
            return Vec::new();
        }
        Some(EventKind::LearnRefused) => {
            counts.refused += 1;
            return Vec::new();
        }
        _ => return Vec::new(),
    }
    // Read with the learn cycle's own payload type (the packet with the cascade's own
    // types): the prompt each persona saw is rebuilt by the cascade's own renderer,
    // byte for byte. A record that does not read, or whose tests did not all pass,
    // is not worth learning from.
    let committed = match LearnCommitted::read(event) {
        Some(c) if c.tests_passed() => c,
        _ => {
            counts.committed_without_passing_tests += 1;
            return Vec::new();
        }
    };
    counts.committed_passing += 1;
    let packet = committed.packet;
    let selector = packet.mandate.selector.clone();
    let system = match &config.system_prompt {
        Some(s) => s.replace("{selector}", &selector),
        None => PromptSet::default().render(persona.default_prompt(), &selector),
    };
    let mut out = Vec::new();
    for (index, c) in packet.contributions.iter().enumerate() {
        if c.persona != persona {
            continue;
        }
        // A candidate writer's reply is kept when it is the one the cycle chose (or
        // wrote the same code); the other personas' notes when they said something.
        let chosen = packet.decided_by == Some(persona)
            || c.structured
                .as_ref()
                .and_then(|v| v.get("source"))
                .and_then(Value::as_str)
                .zip(packet.candidate.as_ref())
                .is_some_and(|(own, chosen)| own == chosen.source);
        let kept = c.error.is_none()
            && !c.text.trim().is_empty()
            && (!persona.writes_candidate() || chosen);
        if !kept {
            counts.contributions_not_kept += 1;
            continue;
        }
        let at_step = packet_before_step(&packet, index);
        let user = user_prompt(persona, index == 0, &at_step, EVIDENCE_LIMIT);
        let (system, a) = scrub(&system);
        let (user, b) = scrub(&user);
        let (reply, c) = scrub(&c.text);
        counts.secrets_scrubbed += a.secrets + b.secrets + c.secrets;
        counts.paths_scrubbed += a.paths + b.paths + c.paths;
        out.push(Example {
            messages: vec![
                Message {
                    role: "system".into(),
                    content: system,
                },
                Message {
                    role: "user".into(),
                    content: user,
                },
                Message {
                    role: "assistant".into(),
                    content: reply,
                },
            ],
        });
    }
    out
}

/// How many replacements [`scrub`] made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Secrets replaced by `[REDACTED]`.
    pub secrets: u64,
    /// Host paths replaced by `<path>`.
    pub paths: u64,
}

struct ScrubRules {
    /// Secrets whose value is the whole match.
    tokens: Vec<Regex>,
    /// `Bearer <token>`.
    bearer: Regex,
    /// `UPPER_CASE_KEY=value`, no spaces, unquoted (env files, shell).
    env_assign: Regex,
    /// `password = "…"`, `"api_key": "…"`, `DB_PASSWORD='…'`: a secret-looking name given a quoted value.
    quoted_assign: Regex,
    /// `/home/…`, `/root/…`, `/work/…`, `/tmp/…` (and `file://` forms).
    host_path: Regex,
}

fn rules() -> &'static ScrubRules {
    static RULES: OnceLock<ScrubRules> = OnceLock::new();
    RULES.get_or_init(|| {
        // The patterns are constants; a typo is caught by the tests on first use.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("scrub pattern {p:?}: {e}"));
        ScrubRules {
            tokens: vec![
                re(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"),
                re(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
                re(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
                re(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
                re(r"\bAKIA[0-9A-Z]{16}\b"),
                re(r"\bAIza[0-9A-Za-z_\-]{35}"),
                re(r"\bhf_[A-Za-z0-9]{20,}"),
                re(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
            ],
            bearer: re(r"(?i)\b(bearer)(\s+)[A-Za-z0-9_\-.~+/]{8,}=*"),
            env_assign: re(
                r#"\b([A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)[A-Z0-9_]*)=([^\s"'()\[\]{},;]+)"#,
            ),
            quoted_assign: re(
                r#"(?i)\b([a-z0-9_\-]*(?:(?:api|access|secret|private|auth)[_\-]?key|token|secret|password|passwd|credentials?)[a-z0-9_\-]*["']?)(\s*[=:]\s*)("[^"\n]*"|'[^'\n]*')"#,
            ),
            host_path: re(
                r#"(?:file://)?/(?:home|root|work|tmp|Users)\b(?:/[^\s"'`<>|)\]},;]*)?"#,
            ),
        }
    })
}

/// Replaces secrets and host paths in `text`.
///
/// Secrets: API-key and token shapes (`sk-…`, `ghp_…`, `AKIA…`, `hf_…`, JWTs, …),
/// `Bearer <token>`, upper-case env-like assignments whose name says key, token,
/// secret or password (`API_KEY=…`, unquoted and without spaces, as in env files and
/// shells), and names that say so given a quoted value in code, YAML or JSON
/// (`password = "…"`, `"api_key": "…"`, `DB_PASSWORD='…'`) — the value becomes
/// `[REDACTED]`, the name and quotes stay. Unquoted values in code (`key=lambda …`,
/// `MAX_TOKENS = 100`) are left alone: code is what the forge learns from. Host paths under `/home`, `/root`, `/work`, `/tmp` (and `/Users`)
/// become `<path>`; a path must start at a word boundary, so `/tmp` inside a URL's
/// path (`https://x/tmp/…`) is left alone.
pub fn scrub(text: &str) -> (String, Scrubbed) {
    let r = rules();
    let mut n = Scrubbed::default();
    let mut out = text.to_string();
    for token in &r.tokens {
        out = replace_counting(token, &out, &mut n.secrets, |_| "[REDACTED]".into());
    }
    out = replace_counting(&r.bearer, &out, &mut n.secrets, |c| {
        format!("{}{}[REDACTED]", &c[1], &c[2])
    });
    out = replace_counting(&r.env_assign, &out, &mut n.secrets, |c| {
        format!("{}=[REDACTED]", &c[1])
    });
    out = replace_counting(&r.quoted_assign, &out, &mut n.secrets, |c| {
        let quote = &c[3][..1];
        format!("{}{}{quote}[REDACTED]{quote}", &c[1], &c[2])
    });
    // Paths: the regex crate has no look-behind, so the boundary check is by hand: a
    // match preceded by a word character, `/`, `.` or `:` (inside a URL or another
    // path) is kept.
    let mut result = String::with_capacity(out.len());
    let mut last = 0;
    for m in r.host_path.find_iter(&out) {
        let prev = out[..m.start()].chars().next_back();
        let inside = prev
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
            || (prev == Some(':') && !m.as_str().starts_with("file://"));
        if inside {
            continue;
        }
        result.push_str(&out[last..m.start()]);
        result.push_str("<path>");
        last = m.end();
        n.paths += 1;
    }
    result.push_str(&out[last..]);
    (result, n)
}

fn replace_counting(
    re: &Regex,
    text: &str,
    count: &mut u64,
    with: impl Fn(&regex::Captures<'_>) -> String,
) -> String {
    re.replace_all(text, |c: &regex::Captures<'_>| {
        let replacement = with(c);
        if replacement != c[0] {
            *count += 1;
        }
        replacement
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets_and_keeps_code() {
        let cases = [
            (
                "export OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwx",
                "export OPENAI_API_KEY=[REDACTED]",
            ),
            ("NEWSAPI_KEY=0123456789abcdef", "NEWSAPI_KEY=[REDACTED]"),
            ("DB_PASSWORD='hunter2'", "DB_PASSWORD='[REDACTED]'"),
            ("API_TOKEN = \"abc\"", "API_TOKEN = \"[REDACTED]\""),
            (
                "Authorization: Bearer abc.def-ghi_123456",
                "Authorization: Bearer [REDACTED]",
            ),
            ("password = \"hunter2\"", "password = \"[REDACTED]\""),
            ("{\"api_key\": \"k-123\"}", "{\"api_key\": \"[REDACTED]\"}"),
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123",
                "token [REDACTED]",
            ),
            ("use hf_abcdefghijklmnopqrstuvwx now", "use [REDACTED] now"),
        ];
        for (input, want) in cases {
            let (got, n) = scrub(input);
            assert_eq!(got, want, "scrubbing {input:?}");
            assert!(n.secrets >= 1, "{input:?} counted no secret");
        }
        // Code that merely names keys or passwords is left alone.
        for code in [
            "return sorted(xs, key=lambda x: x[1])",
            "def login(self, password: str):",
            "self.tokens = []",
            "MAX_TOKENS = 100",
            "the token sequence is long",
        ] {
            let (got, n) = scrub(code);
            assert_eq!(got, code);
            assert_eq!(n, Scrubbed::default());
        }
    }

    #[test]
    fn scrubs_host_paths_only_at_their_start() {
        let (got, n) = scrub(
            "open('/home/alice/notes.txt') then /tmp/x, /root, file:///work/main/a.py and cwd=/work",
        );
        assert_eq!(
            got,
            "open('<path>') then <path>, <path>, <path> and cwd=<path>"
        );
        assert_eq!(n.paths, 5);
        let url = "see https://example.org/home/index.html or /usr/lib/python3";
        assert_eq!(scrub(url).0, url);
        assert_eq!(scrub("/homework/a").0, "/homework/a");
    }
}
