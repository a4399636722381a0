//! A real OpenAI-compatible server for tests (features `test-utils` and `openai`):
//! llama-cpp-python's server on loopback, serving the embedded default GGUF model, or
//! the server `AURA_TEST_OPENAI_URL` names.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv `scripts/setup.sh test` installs llama-cpp-python's server into.
pub const SERVER_VENV: &str = ".venv-llama-server";

/// A running OpenAI-compatible server; a server this process started is killed on drop.
#[derive(Debug)]
pub struct OpenAiTestServer {
    url: String,
    model: String,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl OpenAiTestServer {
    /// The server to test against: `AURA_TEST_OPENAI_URL` (its model from
    /// `AURA_TEST_OPENAI_MODEL`), else llama-cpp-python's server from `SERVER_VENV`
    /// under `root` serving `models/SmolLM2-135M-Instruct.Q4_1.gguf`. `None`, with the
    /// reason printed, when neither is there.
    pub fn start(root: &Path) -> Option<Self> {
        if let Some(url) = std::env::var("AURA_TEST_OPENAI_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            let model =
                std::env::var("AURA_TEST_OPENAI_MODEL").unwrap_or_else(|_| "smollm2".into());
            return Some(Self {
                url,
                model,
                child: None,
                log: None,
            });
        }
        let python = root.join(SERVER_VENV).join("bin/python");
        let gguf = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        if !python.is_file() || !gguf.is_file() {
            println!(
                "skipped: no OpenAI-compatible server ({} or {} missing; `scripts/setup.sh test` \
                 installs both, or set AURA_TEST_OPENAI_URL)",
                python.display(),
                gguf.display()
            );
            return None;
        }
        Some(Self::spawn(&python, &gguf))
    }

    fn spawn(python: &Path, gguf: &Path) -> Self {
        #[allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a failed test
        {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let log = std::env::temp_dir().join(format!("aura-llama-server-{port}.log"));
            let out = std::fs::File::create(&log).expect("the server's log file");
            let child = Command::new(python)
                .args(["-m", "llama_cpp.server", "--model"])
                .arg(gguf)
                .args(["--model_alias", "smollm2", "--host", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--n_ctx", "2048", "--n_threads", "2", "--embedding", "true"])
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .stderr(Stdio::from(out))
                .spawn()
                .expect("starting llama-cpp-python's server");
            let server = Self {
                url: format!("http://127.0.0.1:{port}/v1"),
                model: "smollm2".into(),
                child: Some(child),
                log: Some(log),
            };
            server.wait_ready(Duration::from_secs(120));
            server
        }
    }

    fn wait_ready(&self, within: Duration) {
        let started = Instant::now();
        let addr = self
            .url
            .trim_start_matches("http://")
            .trim_end_matches("/v1");
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!("GET /v1/models HTTP/1.0\r\nHost: {addr}\r\n\r\n");
                let mut reply = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut reply).is_ok()
                    && reply.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            assert!(
                started.elapsed() < within,
                "the OpenAI-compatible server did not answer within {within:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The API root (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The model it serves.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The spec naming it in a model setting (`openai:URL#MODEL`).
    pub fn spec(&self) -> String {
        format!("openai:{}#{}", self.url, self.model)
    }

    /// Kills the server with SIGKILL, as a crash would (a no-op for an external one).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text[text.ceil_char_boundary(start)..].to_string()
    }
}

impl Drop for OpenAiTestServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
    }
}
