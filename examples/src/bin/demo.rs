//! The main job on the embedded defaults: awaken an object, give it a method, call it.
//!
//! `scripts/demo.sh` sets up what it needs and runs this. The learn cycle (teaching a
//! method by natural language) is not wired yet; until it is, the demo defines the
//! method by hand — through the same guard, store and sandbox the learn cycle will use.

use aura_core::store::NewObject;
use aura_core::{Error, Runtime};
use serde_json::json;

const FIBONACCI: &str = "\
def fibonacci(self, n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    self.calls = self.calls + 1 if isinstance(self.calls, int) else 1
    return a
";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    aura_examples::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> aura_core::Result<()> {
    let rt = Runtime::builder().build().await?;
    println!("store: {:?}", rt.config().store_path);

    let calc = match rt.find("calc").await {
        Ok(o) => o,
        Err(Error::NotFound { .. }) => rt.create_object(NewObject::named("calc")).await?,
        Err(e) => return Err(e),
    };
    println!(
        "awake: object {:?} ({}), delegating to genesis",
        calc.name, calc.id
    );

    match rt.send(calc.id, "fibonacci", vec![json!(10)]).await {
        Err(Error::DoesNotUnderstand { .. }) => {
            println!("calc does not understand 'fibonacci' yet: teaching it");
            let m = rt
                .define_method(calc.id, "fibonacci", FIBONACCI, "the n-th Fibonacci number")
                .await?;
            println!("guard accepted it; stored as version {}", m.version);
        }
        Err(e) => return Err(e),
        Ok(_) => println!("calc already knows 'fibonacci' (from an earlier run)"),
    }

    let hostile = "import os\ndef ls(self):\n    return os.listdir('.')\n";
    match rt.define_method(calc.id, "ls", hostile, "list files").await {
        Err(Error::Rejected { verdict, .. }) => {
            println!("guard refused a hostile method:\n{verdict}")
        }
        other => println!("unexpected: {other:?}"),
    }

    for n in [10, 20, 30] {
        let value = rt.send(calc.id, "fibonacci", vec![json!(n)]).await?;
        println!("calc fibonacci({n}) = {value}");
    }
    println!(
        "calc.calls = {}",
        rt.slot(calc.id, "calls").await?.unwrap_or(json!(0))
    );
    Ok(())
}
