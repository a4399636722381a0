//! # aura-sandbox
//!
//! The [`Sandbox`] port: every learned method — its tests while it is learned, every
//! later call — runs in isolation behind it.
//!
//! * [`JailSandbox`] (Linux, always built): user/pid/mount/net/ipc/uts namespaces, a
//!   read-only root holding only the interpreter's runtime, a fresh scratch tmpfs per
//!   call, an empty environment, `no_new_privs`, seccomp, rlimits, and a wall-clock kill,
//!   around a pool of warm CPython fork-servers (one fork per call).
//! * `DockerSandbox` (feature `docker`): one ephemeral, locked-down container per call,
//!   or per batch ([`Sandbox::execute_batch`]: a search's candidates, each still in a
//!   process of its own under its own limits).
//!
//! ```no_run
//! # async fn demo() -> aura_sandbox::Result<()> {
//! use aura_sandbox::{ExecRequest, JailSandbox, MethodSource, Sandbox};
//! let sandbox = JailSandbox::builder().python("/usr/bin/python3").build()?;
//! let method = MethodSource {
//!     selector: "double".into(),
//!     source: "def double(self, x):\n    self.last = x\n    return 2 * x\n".into(),
//! };
//! let outcome = sandbox.execute(ExecRequest::call(method, vec![21.into()])).await?;
//! assert_eq!(outcome.value, Some(42.into()));
//! assert_eq!(outcome.slot_changes["last"], 21);
//! # Ok(()) }
//! ```
//!
//! ## What the guest sees
//!
//! The method's source is compiled in its own module namespace and called as
//! `obj.<selector>(*args)`, where `obj` is an object whose attributes are the slots
//! (reads) and the helper methods (`self.other(…)`); assigning `self.x = …` sets a slot.
//! Slots the method assigned or mutated in place come back in
//! [`ExecOutcome::slot_changes`]. Return values and slot values must be JSON-serialisable,
//! or the call ends with a `TypeError` exception outcome.
//!
//! **Test runs** ([`ExecRequest::tests`]): the test module is run with a module global
//! `obj` (the object, with the method and helpers bound); then each `test_*` function,
//! in definition order, runs with a *fresh* object built from the request's slots, both
//! as the global `obj` and as its first argument when it takes one:
//!
//! ```python
//! def test_doubles():
//!     assert obj.double(2) == 4
//! def test_records(o):
//!     o.double(3)
//!     assert o.last == 3
//! ```
//!
//! A test passes when it returns, and fails with its exception's text otherwise. The
//! run ends [`EndReason::Ok`] when every test ran (passed or not).
//!
//! ## Limits
//!
//! `wall` is enforced by the supervisor (SIGKILL) → `Timeout`; `cpu` by `RLIMIT_CPU`
//! (whole seconds, rounded up) → `Timeout`; `memory_bytes` by `RLIMIT_AS` on top of the
//! interpreter's baseline address space (plus the container's memory limit in Docker)
//! → `Memory` (a `MemoryError`); `output_bytes` caps stdout and stderr (each), the JSON
//! of the return value and of the slot changes → `OutputLimit`. New processes and
//! programs (`fork`, `exec`) and sockets fail with `EPERM` (an exception outcome);
//! dangerous system calls kill the guest (`Killed`).

#![deny(unsafe_code)]

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(feature = "docker")]
mod docker;
mod error;
#[cfg(target_os = "linux")]
mod jail;
mod port;
mod protocol;
#[cfg(target_os = "linux")]
mod seccomp;

#[cfg(feature = "docker")]
pub use docker::{DockerSandbox, DockerSandboxBuilder, CONTAINER_LABEL, DEFAULT_IMAGE, IMAGE_ENV};
pub use error::{BoxError, Error, Result};
#[cfg(target_os = "linux")]
pub use jail::{
    JailSandbox, JailSandboxBuilder, PythonChoice, DEFAULT_CODE_CACHE_BYTES,
    DEFAULT_CODE_CACHE_ENTRIES, DEFAULT_CODE_CACHE_SOURCE_BYTES, PYTHON_ENV, SYSTEM_PYTHON,
};
#[cfg(any(test, feature = "test-utils"))]
pub use port::MockSandbox;
pub use port::*;

/// The Docker adapter from the environment when this build has the `docker` feature
/// ([`Error::Unavailable`] otherwise): lets a host (or a bench) pick the backend at run
/// time without a feature of its own.
pub async fn docker_from_env() -> Result<DynSandbox> {
    #[cfg(feature = "docker")]
    {
        Ok(std::sync::Arc::new(DockerSandbox::from_env().await?))
    }
    #[cfg(not(feature = "docker"))]
    {
        Err(Error::Unavailable(
            "aura-sandbox was built without the `docker` feature".into(),
        ))
    }
}
