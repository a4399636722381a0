//! Fixtures shared by aura-core's integration tests.
#![allow(clippy::expect_used)] // a fixture that cannot be built should fail the test loudly

use aura_sandbox::JailSandbox;

/// A jail on Debian's interpreter when present (it starts ~7× faster than a pyenv shim).
pub fn jail() -> JailSandbox {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    JailSandbox::builder()
        .python(python)
        .build()
        .expect("the jail sandbox builds")
}
