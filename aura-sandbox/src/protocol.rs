//! The host↔guest protocol: length-prefixed JSON frames over pipes, and the host-side
//! validation that turns what came back into an [`ExecOutcome`].
//!
//! Every frame is a 4-byte big-endian length and that many bytes of JSON. The host sends
//! a config frame, then request frames; the server answers `{"ready":…}` (or
//! `{"fatal":…}`) once, then for each request a *meta* frame (written by the trusted
//! server: exit status, usage, whether it timed out) and a *reply* frame (the guest
//! child's bytes verbatim). Only the host parses the reply, with size caps and strict
//! types: nothing the guest made is ever unpickled, formatted or called.

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{
    EndReason, Error, ExecOutcome, ExecRequest, GuestError, Limits, ResourceUsage, Result,
    TestResult,
};

/// The guest runner, shipped with the crate.
const RUNNER: &str = include_str!("runner.py");

/// Compiles the runner in a throw-away child and runs its code (see the file).
const BOOT: &str = include_str!("boot.py");

/// The interpreter's arguments that start the runner in `mode` ("jail" or "plain").
pub(crate) fn runner_args(mode: &'static str) -> [&'static str; 7] {
    ["-I", "-S", "-B", "-c", BOOT, mode, RUNNER]
}

/// The config's `api` entry: the API allowlist for the runtime layer, or `null` (off).
pub(crate) fn module_api_config(json: Option<&str>) -> Result<Value> {
    let Some(json) = json else {
        return Ok(Value::Null);
    };
    let api: Value = serde_json::from_str(json)
        .map_err(|e| Error::Invalid(format!("the module API allowlist is not JSON: {e}")))?;
    if !api.get("modules").is_some_and(Value::is_object)
        || !api.get("builtins").is_some_and(Value::is_array)
    {
        return Err(Error::Invalid(
            "the module API allowlist needs \"modules\" and \"builtins\"".into(),
        ));
    }
    Ok(api)
}

/// Largest meta / ready frame the host accepts.
pub(crate) const MAX_CONTROL_FRAME: usize = 64 << 10;
/// Largest request the host sends.
pub(crate) const MAX_REQUEST: usize = 64 << 20;

/// The cap on a reply frame for these limits (stdout, stderr, value, slot changes, slack).
pub(crate) fn reply_cap(limits: &Limits) -> usize {
    let out = usize::try_from(limits.output_bytes).unwrap_or(usize::MAX / 8);
    out.saturating_mul(4).saturating_add(1 << 20)
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| Error::Invalid("request too large".into()))?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf)
        .await
        .map_err(|e| Error::Protocol(format!("write to the guest: {e}")))?;
    w.flush()
        .await
        .map_err(|e| Error::Protocol(format!("write to the guest: {e}")))
}

/// Reads one frame of at most `max` bytes.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)
        .await
        .map_err(|e| Error::Protocol(format!("the guest closed the channel: {e}")))?;
    let len = u32::from_be_bytes(head) as usize;
    if len > max {
        return Err(Error::Protocol(format!(
            "oversize frame: {len} bytes (cap {max})"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .await
        .map_err(|e| Error::Protocol(format!("truncated frame: {e}")))?;
    Ok(body)
}

/// Checks a request before it is sent and serialises it.
pub(crate) fn encode_request(req: &ExecRequest) -> Result<Vec<u8>> {
    check_selector(&req.method.selector)?;
    for h in &req.helpers {
        check_selector(&h.selector)?;
    }
    let l = &req.limits;
    if l.wall.is_zero() || l.cpu.is_zero() || l.memory_bytes == 0 || l.output_bytes == 0 {
        return Err(Error::Invalid("every limit must be positive".into()));
    }
    if l.wall.as_millis() > u128::from(u32::MAX) || l.cpu.as_millis() > u128::from(u32::MAX) {
        return Err(Error::Invalid("time limits must be under 49 days".into()));
    }
    let body = serde_json::to_vec(req)
        .map_err(|e| Error::Invalid(format!("unserialisable request: {e}")))?;
    if body.len() > MAX_REQUEST {
        return Err(Error::Invalid(format!(
            "request of {} bytes exceeds {MAX_REQUEST}",
            body.len()
        )));
    }
    Ok(body)
}

fn check_selector(s: &str) -> Result<()> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && s.len() <= 200;
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "selector {s:?} is not a Python identifier"
        )))
    }
}

/// The server's first answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Ready {
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub fatal: Option<String>,
}

/// What the trusted server reports about one child.
#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    pub timed_out: bool,
    pub overflow: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub peak_rss_kib: u64,
}

/// What the guest child wrote (untrusted: strict types, bounded by the frame cap).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    #[serde(default)]
    setup_error: Option<String>,
    ended: Option<EndReason>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    error: Option<GuestError>,
    #[serde(default)]
    slot_changes: Map<String, Value>,
    #[serde(default)]
    tests: Vec<TestResult>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    /// Sources the child compiled itself (code cache misses).
    #[serde(default)]
    compiled: u64,
}

/// A present field is `Some`, even when it is `null` (a method that returned `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;

fn truncate(mut s: String, cap: u64) -> String {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// An outcome with nothing but its reason, usage and a note on stderr.
pub(crate) fn bare_outcome(ended: EndReason, usage: ResourceUsage, note: String) -> ExecOutcome {
    ExecOutcome {
        ended,
        value: None,
        error: None,
        slot_changes: Map::new(),
        tests: Vec::new(),
        stdout: String::new(),
        stderr: note,
        usage,
    }
}

/// One request's result inside a batch: a guest that broke the protocol (a garbled
/// reply, or a channel that closed on it) loses only its own result, as a `Killed`
/// outcome with the error on stderr; any other error (a broken backend) stands.
/// `wall_ms`: how long that request ran.
pub(crate) fn contain(result: Result<ExecOutcome>, wall_ms: u64) -> Result<ExecOutcome> {
    match result {
        Err(Error::Protocol(m)) => {
            let usage = ResourceUsage {
                wall_ms,
                ..ResourceUsage::default()
            };
            Ok(bare_outcome(
                EndReason::Killed,
                usage,
                format!("killed: the guest broke the protocol: {m}"),
            ))
        }
        other => other,
    }
}

/// Turns the server's meta frame and the child's reply into an outcome.
pub(crate) fn build_outcome(
    backend: &'static str,
    meta: &Meta,
    reply: &[u8],
    limits: &Limits,
) -> Result<ExecOutcome> {
    let mut usage = ResourceUsage {
        wall_ms: meta.wall_ms,
        cpu_ms: meta.cpu_ms,
        peak_rss_kib: meta.peak_rss_kib,
        compiled_sources: 0,
    };
    if meta.timed_out {
        let note = format!("killed: wall-clock limit of {} ms", limits.wall.as_millis());
        return Ok(bare_outcome(EndReason::Timeout, usage, note));
    }
    if meta.overflow {
        return Ok(bare_outcome(
            EndReason::OutputLimit,
            usage,
            "killed: oversize reply".into(),
        ));
    }
    if let Some(sig) = meta.signal {
        let cpu_spent = u128::from(meta.cpu_ms) + 50 >= limits.cpu.as_millis();
        let (ended, why) = if sig == SIGXCPU || (sig == SIGKILL && cpu_spent) {
            (
                EndReason::Timeout,
                format!("killed: CPU limit of {} ms", limits.cpu.as_millis()),
            )
        } else if sig == 31 {
            (
                EndReason::Killed,
                "killed: forbidden system call (seccomp)".to_string(),
            )
        } else {
            (EndReason::Killed, format!("killed by signal {sig}"))
        };
        return Ok(bare_outcome(ended, usage, why));
    }
    if reply.is_empty() {
        let note = format!(
            "the guest exited (status {}) without a reply",
            meta.exit_code.unwrap_or(-1)
        );
        return Ok(bare_outcome(EndReason::Killed, usage, note));
    }
    let r: Reply = serde_json::from_slice(reply)
        .map_err(|e| Error::Protocol(format!("malformed reply from the guest: {e}")))?;
    if let Some(msg) = r.setup_error {
        return Err(Error::backend(
            backend,
            format!("the guest could not be locked down: {msg}"),
        ));
    }
    let ended = r
        .ended
        .ok_or_else(|| Error::Protocol("the guest's reply has no `ended`".into()))?;
    if ended == EndReason::Exception && r.error.is_none() {
        return Err(Error::Protocol(
            "an exception reply without the exception".into(),
        ));
    }
    if r.tests.len() > 10_000 {
        return Err(Error::Protocol("too many test results".into()));
    }
    usage.compiled_sources = r.compiled;
    let out = limits.output_bytes;
    Ok(ExecOutcome {
        ended,
        value: if ended == EndReason::Ok {
            r.value
        } else {
            None
        },
        error: r.error,
        slot_changes: if ended == EndReason::Ok {
            r.slot_changes
        } else {
            Map::new()
        },
        tests: r.tests,
        stdout: truncate(r.stdout, out),
        stderr: truncate(r.stderr, out),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            timed_out: false,
            overflow: false,
            exit_code: Some(0),
            signal: None,
            wall_ms: 1,
            cpu_ms: 1,
            peak_rss_kib: 1,
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let l = Limits::default();
        for bad in [
            &b"not json"[..],
            b"{\"ended\":\"bogus\"}",
            b"{\"ended\":\"ok\",\"x\":1}",
            b"[1,2]",
        ] {
            assert!(matches!(
                build_outcome("t", &meta(), bad, &l),
                Err(Error::Protocol(_))
            ));
        }
        let deep = "[".repeat(10_000);
        assert!(matches!(
            build_outcome("t", &meta(), deep.as_bytes(), &l),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn signals_map_to_reasons() {
        let l = Limits::default();
        let mut m = meta();
        m.signal = Some(SIGXCPU);
        assert_eq!(
            build_outcome("t", &m, b"", &l).ok().map(|o| o.ended),
            Some(EndReason::Timeout)
        );
        m.signal = Some(31);
        assert_eq!(
            build_outcome("t", &m, b"", &l).ok().map(|o| o.ended),
            Some(EndReason::Killed)
        );
        m.signal = None;
        m.exit_code = Some(3);
        assert_eq!(
            build_outcome("t", &m, b"", &l).ok().map(|o| o.ended),
            Some(EndReason::Killed)
        );
    }

    #[test]
    fn stdout_is_capped_on_the_host_too() {
        let l = Limits {
            output_bytes: 4,
            ..Limits::default()
        };
        let o = build_outcome("t", &meta(), br#"{"ended":"ok","stdout":"h\u00e9llo"}"#, &l);
        assert_eq!(o.ok().map(|o| o.stdout), Some("h\u{e9}l".to_string()));
    }

    #[test]
    fn the_compiled_count_is_optional() {
        let l = Limits::default();
        let o = build_outcome("t", &meta(), br#"{"ended":"ok","compiled":3}"#, &l);
        assert_eq!(o.ok().map(|o| o.usage.compiled_sources), Some(3));
        let o = build_outcome("t", &meta(), br#"{"ended":"ok"}"#, &l);
        assert_eq!(o.ok().map(|o| o.usage.compiled_sources), Some(0));
        let o = build_outcome("t", &meta(), br#"{"ended":"ok","compiled":-1}"#, &l);
        assert!(matches!(o, Err(Error::Protocol(_))));
    }

    #[test]
    fn a_batch_contains_only_protocol_errors() {
        let o = contain(Err(Error::Protocol("garbage".into())), 7);
        let o = o.ok().map(|o| (o.ended, o.usage.wall_ms, o.stderr));
        assert_eq!(
            o,
            Some((
                EndReason::Killed,
                7,
                "killed: the guest broke the protocol: garbage".into()
            ))
        );
        let e = contain(Err(Error::Unavailable("down".into())), 7);
        assert!(matches!(e, Err(Error::Unavailable(_))));
    }

    #[test]
    fn selectors_are_identifiers() {
        assert!(check_selector("fib_2").is_ok());
        for bad in ["", "2x", "a.b", "a b", "__import__('os')"] {
            assert!(check_selector(bad).is_err(), "{bad}");
        }
    }
}
