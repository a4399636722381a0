//! `DockerSandbox`: the external adapter. One ephemeral container per execution, or
//! per batch.
//!
//! Each call (each [`Sandbox::execute_batch`] batch) creates a container from the local
//! sandbox image (`aura-sandbox:latest`, built offline by
//! `aura-sandbox/docker/build-image.sh`, which `scripts/setup.sh` runs) with no
//! network, a read-only root, a tmpfs `/scratch`, every capability dropped,
//! `no-new-privileges`, uid 65534, pids/memory/CPU limits, a private IPC namespace
//! without `/dev/shm`, and the label [`CONTAINER_LABEL`]. The same guest runner as the jail runs inside in "plain" mode
//! (no namespaces of its own; the same rlimits and seccomp filters per child): the host
//! writes the config and the requests to the attached stdin and closes it, and the
//! runner serves them in order, each in a child forked for it under that request's
//! limits, emptying the shared `/scratch` (and `/dev/mqueue`, and the SysV objects of
//! the container's IPC namespace) between them, and exits at end-of-file. The runner
//! is non-dumpable, so its children cannot reach it through `/proc/1`. A
//! single `execute` is a batch of one. The container is then force-removed; a drop
//! guard removes it too when the call fails, times out, or its future is dropped
//! mid-run.
//!
//! The container's own deadline is the sum of its requests' wall limits plus a start
//! budget; past it, the requests not yet answered end `Timeout` and the answered keep
//! their outcomes. Its memory limit is the largest request's plus 96 MiB (the children
//! run one at a time).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::protocol::{self, Meta, Ready};
use crate::{
    EndReason, Error, ExecOutcome, ExecRequest, Limits, ResourceUsage, Result, Sandbox,
    SandboxCapabilities,
};

const BACKEND: &str = "docker";
/// The label every sandbox container carries (value: the creating process id).
pub const CONTAINER_LABEL: &str = "org.aura.sandbox";
/// The default image.
pub const DEFAULT_IMAGE: &str = "aura-sandbox:latest";
/// The env var naming the image ([`DockerSandboxBuilder::from_env`]).
pub const IMAGE_ENV: &str = "AURA_SANDBOX_IMAGE";
const SETUP_HINT: &str =
    "run scripts/setup.sh (it installs docker.io, starts dockerd and builds the image)";

/// Builds a [`DockerSandbox`].
#[derive(Clone, Debug)]
pub struct DockerSandboxBuilder {
    image: String,
    scratch_bytes: u64,
    pids: i64,
    start_budget: Duration,
    label: String,
    module_api: Option<String>,
}

impl Default for DockerSandboxBuilder {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.into(),
            scratch_bytes: 16 << 20,
            pids: 64,
            start_budget: Duration::from_secs(10),
            label: std::process::id().to_string(),
            module_api: None,
        }
    }
}

impl DockerSandboxBuilder {
    /// Defaults, with the image from `AURA_SANDBOX_IMAGE` when set. The engine is found
    /// the way the docker CLI finds it (`DOCKER_HOST`, else the local socket).
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Ok(image) = std::env::var(IMAGE_ENV) {
            if !image.is_empty() {
                b.image = image;
            }
        }
        b
    }

    /// The image to run (default `aura-sandbox:latest`).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The scratch tmpfs size (default 16 MiB).
    pub fn scratch_bytes(mut self, n: u64) -> Self {
        self.scratch_bytes = n;
        self
    }

    /// The container's pids limit (default 64).
    pub fn pids_limit(mut self, n: i64) -> Self {
        self.pids = n;
        self
    }

    /// Turns on the runtime layer: guest code gets only the allowed builtins, and an
    /// import gets a read-only proxy exposing only the allowlisted names of its module.
    /// `json` is the API allowlist the guard enforces (`aura_guard::module_api_json()`),
    /// so both layers enforce one list. Checked by `build`.
    pub fn module_api(mut self, json: impl Into<String>) -> Self {
        self.module_api = Some(json.into());
        self
    }

    /// The value of [`CONTAINER_LABEL`] on this sandbox's containers (default: the
    /// process id), so that a host can find and reap exactly its own.
    pub fn label(mut self, value: impl Into<String>) -> Self {
        self.label = value.into();
        self
    }

    /// Connects to the engine and checks that it answers and that the image exists.
    pub async fn build(self) -> Result<DockerSandbox> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| Error::Unavailable(format!("no Docker engine ({e}); {SETUP_HINT}")))?;
        tokio::time::timeout(Duration::from_secs(5), docker.ping())
            .await
            .map_err(|_| {
                Error::Unavailable(format!("the Docker engine does not answer; {SETUP_HINT}"))
            })?
            .map_err(|e| {
                Error::Unavailable(format!(
                    "the Docker engine is not reachable ({e}); {SETUP_HINT}"
                ))
            })?;
        docker.inspect_image(&self.image).await.map_err(|e| {
            Error::Unavailable(format!(
                "the sandbox image {} is missing ({e}); {SETUP_HINT}",
                self.image
            ))
        })?;
        let config = serde_json::to_vec(&crate::seccomp::with_filters(json!({
            "scratch_bytes": self.scratch_bytes,
            "nproc": 4096,
            "api": crate::protocol::module_api_config(self.module_api.as_deref())?,
        }))?)
        .map_err(|e| Error::wrap(BACKEND, e))?;
        Ok(DockerSandbox {
            docker,
            builder: self,
            config,
        })
    }
}

/// Runs each execution in a fresh, locked-down container.
#[derive(Clone)]
pub struct DockerSandbox {
    docker: Docker,
    builder: DockerSandboxBuilder,
    config: Vec<u8>,
}

impl std::fmt::Debug for DockerSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSandbox")
            .field("image", &self.builder.image)
            .finish_non_exhaustive()
    }
}

impl DockerSandbox {
    /// A builder with defaults.
    pub fn builder() -> DockerSandboxBuilder {
        DockerSandboxBuilder::default()
    }

    /// Defaults from the environment; connects and checks the image.
    pub async fn from_env() -> Result<Self> {
        DockerSandboxBuilder::from_env().build().await
    }

    /// Names of this sandbox's containers (label [`CONTAINER_LABEL`] with this
    /// sandbox's value), running or not. Empty between calls.
    pub async fn labelled_containers(&self) -> Result<Vec<String>> {
        let mut filters = HashMap::new();
        filters.insert(
            "label",
            vec![format!("{CONTAINER_LABEL}={}", self.builder.label)],
        );
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(backend)?;
        Ok(list
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .collect())
    }

    /// Runs a batch in one container: one result per request, in order, with how long
    /// it ran. The outer `Err` is a broken backend; an inner one is that request's own
    /// (a guest that broke the protocol). Requests still unanswered at the container's
    /// deadline end `Timeout`.
    async fn batch(&self, requests: &[ExecRequest]) -> Result<Vec<Answer>> {
        let bodies = requests
            .iter()
            .map(protocol::encode_request)
            .collect::<Result<Vec<_>>>()?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let name = format!(
            "aura-sandbox-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let start = Instant::now();
        // Armed before the container exists: a create that lands after cancellation is
        // still removed (removing a missing container only logs).
        let guard = RemoveGuard {
            docker: self.docker.clone(),
            name: name.clone(),
            armed: true,
        };
        let limits: Vec<&Limits> = requests.iter().map(|r| &r.limits).collect();
        let mut answered = Vec::with_capacity(requests.len());
        let result = self.run(&name, &bodies, &limits, &mut answered).await;
        guard.remove().await;
        result?;
        let wall_ms = start.elapsed().as_millis() as u64;
        while answered.len() < requests.len() {
            let usage = ResourceUsage {
                wall_ms,
                ..ResourceUsage::default()
            };
            let note = "killed: the container missed the wall-clock limit".to_string();
            let timeout = protocol::bare_outcome(EndReason::Timeout, usage, note);
            answered.push((Ok(timeout), wall_ms));
        }
        Ok(answered)
    }

    /// Creates and runs the container, pushing each request's result onto `answered`
    /// as it comes; returns early (`Ok`) when the container's deadline passes.
    async fn run(
        &self,
        name: &str,
        bodies: &[Vec<u8>],
        limits: &[&Limits],
        answered: &mut Vec<Answer>,
    ) -> Result<()> {
        let mut labels = HashMap::new();
        labels.insert(CONTAINER_LABEL.to_string(), self.builder.label.clone());
        let mut tmpfs = HashMap::new();
        tmpfs.insert(
            "/scratch".to_string(),
            format!(
                "rw,nosuid,nodev,noexec,size={},uid=65534,gid=65534,mode=0700",
                self.builder.scratch_bytes
            ),
        );
        // The children run one at a time: the largest request's memory, plus the runner.
        let largest = limits.iter().map(|l| l.memory_bytes).max().unwrap_or(0);
        let memory = i64::try_from(largest.saturating_add(96 << 20)).unwrap_or(i64::MAX);
        let body_cfg = ContainerCreateBody {
            image: Some(self.builder.image.clone()),
            cmd: Some(
                std::iter::once("python3")
                    .chain(protocol::runner_args("plain"))
                    .map(str::to_string)
                    .collect(),
            ),
            entrypoint: Some(Vec::new()),
            env: Some(Vec::new()),
            user: Some("65534:65534".into()),
            working_dir: Some("/scratch".into()),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            network_disabled: Some(true),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(tmpfs),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                pids_limit: Some(self.builder.pids),
                memory: Some(memory),
                memory_swap: Some(memory),
                nano_cpus: Some(1_000_000_000),
                // A private IPC namespace without a shared /dev/shm: the requests of a
                // batch run in one container and must not meet there.
                ipc_mode: Some("none".into()),
                auto_remove: Some(false),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        self.docker
            .create_container(Some(opts), body_cfg)
            .await
            .map_err(backend)?;
        let attach = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(false)
            .build();
        let mut io = self
            .docker
            .attach_container(name, Some(attach))
            .await
            .map_err(backend)?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(backend)?;

        let mut input = Vec::with_capacity(
            self.config.len() + 4 + bodies.iter().map(|b| b.len() + 4).sum::<usize>(),
        );
        for frame in std::iter::once(&self.config).chain(bodies) {
            let len = u32::try_from(frame.len())
                .map_err(|_| Error::Invalid("request too large".into()))?;
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(frame);
        }
        io.input
            .write_all(&input)
            .await
            .map_err(|e| Error::Protocol(format!("container stdin: {e}")))?;
        io.input
            .flush()
            .await
            .map_err(|e| Error::Protocol(format!("container stdin: {e}")))?;
        let _ = io.input.shutdown().await;

        // The frames: ready, then a meta and a reply per request.
        let exchange = async {
            let mut buf: Vec<u8> = Vec::new();
            let mut ready = false;
            let mut meta: Option<Meta> = None;
            while answered.len() < limits.len() {
                // The next frame's cap: a reply's comes from its request's limits.
                let max = match (ready, &meta) {
                    (true, Some(_)) => protocol::reply_cap(limits[answered.len()]),
                    _ => protocol::MAX_CONTROL_FRAME,
                };
                let frame = if buf.len() >= 4 {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if len > max {
                        return Err(Error::Protocol(format!(
                            "oversize frame: {len} bytes (cap {max})"
                        )));
                    }
                    (buf.len() >= 4 + len).then(|| {
                        let frame = buf[4..4 + len].to_vec();
                        buf.drain(..4 + len);
                        frame
                    })
                } else {
                    None
                };
                let Some(frame) = frame else {
                    match io.output.next().await {
                        Some(Ok(LogOutput::StdOut { message })) => buf.extend_from_slice(&message),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(backend(e)),
                        None if !ready => {
                            return Err(Error::Protocol("the container closed its output".into()))
                        }
                        None => {
                            // The runner stopped early: what it did not answer is lost.
                            while answered.len() < limits.len() {
                                let closed = "the container closed its output".to_string();
                                answered.push((Err(Error::Protocol(closed)), 0));
                            }
                        }
                    }
                    continue;
                };
                if !ready {
                    let r: Ready = serde_json::from_slice(&frame)
                        .map_err(|e| Error::Protocol(format!("container handshake: {e}")))?;
                    if let Some(fatal) = r.fatal {
                        return Err(Error::backend(BACKEND, fatal));
                    }
                    ready = true;
                } else if let Some(m) = meta.take() {
                    let l = limits[answered.len()];
                    let outcome = protocol::build_outcome(BACKEND, &m, &frame, l);
                    answered.push((outcome, m.wall_ms));
                } else {
                    meta = Some(
                        serde_json::from_slice(&frame)
                            .map_err(|e| Error::Protocol(format!("container meta frame: {e}")))?,
                    );
                }
            }
            Ok(())
        };
        let budget = limits
            .iter()
            .fold(self.builder.start_budget, |b, l| b.saturating_add(l.wall));
        match tokio::time::timeout(budget, exchange).await {
            Err(_) => Ok(()),
            Ok(r) => r,
        }
    }
}

fn backend(e: bollard::errors::Error) -> Error {
    Error::wrap(BACKEND, e)
}

/// Removes its container when dropped, unless it already did.
struct RemoveGuard {
    docker: Docker,
    name: String,
    armed: bool,
}

impl RemoveGuard {
    async fn remove(mut self) {
        self.armed = false;
        remove(&self.docker, &self.name).await;
    }
}

async fn remove(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(name, Some(opts)).await {
        tracing::debug!(target: "Sandbox", container = name, "removing a sandbox container: {e}");
    }
}

/// The cancellation path: a create still in flight may land after the first removal.
async fn remove_twice(docker: Docker, name: String) {
    remove(&docker, &name).await;
    tokio::time::sleep(Duration::from_millis(750)).await;
    remove(&docker, &name).await;
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(remove_twice(docker, name));
            }
            Err(_) => {
                std::thread::spawn(move || {
                    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        rt.block_on(remove_twice(docker, name));
                    }
                });
            }
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// One request's result in a batch, and how many milliseconds it ran.
type Answer = (Result<ExecOutcome>, u64);

#[async_trait]
impl Sandbox for DockerSandbox {
    fn capabilities(&self) -> SandboxCapabilities {
        SandboxCapabilities {
            backend: BACKEND,
            network_isolation: true,
            memory_limit: true,
            cpu_limit: true,
            measures_rss: true,
        }
    }

    fn describe(&self) -> String {
        format!("{BACKEND}: image {}", self.builder.image)
    }

    async fn execute(&self, request: ExecRequest) -> Result<ExecOutcome> {
        self.batch(std::slice::from_ref(&request))
            .await?
            .pop()
            .map(|(outcome, _)| outcome)
            .unwrap_or_else(|| Err(Error::backend(BACKEND, "no outcome")))
    }

    /// One container for the whole batch (see the module docs): a search on Docker
    /// costs one container start per batch, not one per candidate.
    async fn execute_batch(&self, requests: Vec<ExecRequest>) -> Result<Vec<ExecOutcome>> {
        self.batch(&requests)
            .await?
            .into_iter()
            .map(|(outcome, wall_ms)| protocol::contain(outcome, wall_ms))
            .collect()
    }
}
