//! Measures `LocalModel`: model load time, prompt (prefill) and generation tokens/s.
//! `benches/llm/run.sh` runs it and its llama-cpp-python twin on both tiny models.
//!
//! ```text
//! cargo run -p aura-cognition --release --example bench_local -- [--model PATH] [--threads N] [--gen N] [--runs N]
//! ```
//!
//! Prompt speed is measured with the prompt cache off (every prompt token is decoded);
//! generation is greedy, so every run produces the same tokens. Compare with
//! `examples/bench_llama_cpp_python.py`, which does the same through llama-cpp-python.

use std::time::Instant;

use aura_cognition::{ChatRequest, GenerationOptions, LanguageModel, LocalModel};

struct Args {
    model: Option<String>,
    threads: usize,
    gen: u32,
    runs: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        model: None,
        threads: 2,
        gen: 128,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(value()?),
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--gen" => a.gen = value()?.parse().map_err(|e| format!("--gen: {e}"))?,
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: bench_local [--model PATH] [--threads N] [--gen N] [--runs N]".into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

const PROMPT: &str = "The following is a detailed account of the history of the printing press, \
its invention by Johannes Gutenberg around 1440, the spread of movable type across Europe, the \
effects on literacy, religion, science and politics, the rise of newspapers in the seventeenth \
century, the industrial presses of the nineteenth century, and the transition to offset and \
digital printing in the twentieth century. Each part is told with dates, names and places, and \
the account closes with a reflection on how the press changed the way people share knowledge. \
Write the first chapter of this account now, in plain prose, without headings.";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let mut builder = LocalModel::builder().threads(a.threads).prompt_cache(false);
    if let Some(m) = &a.model {
        builder = builder.model_path(m);
    } else {
        builder = builder.model_path(aura_cognition::default_model_path());
    }
    let t = Instant::now();
    let model = builder.build()?;
    let load = t.elapsed();
    let info = model.info().await?;
    println!("model       {} ({})", info.name, model.path().display());
    println!("threads     {}", a.threads);
    println!("load        {:.0} ms", load.as_secs_f64() * 1000.0);

    let request = ChatRequest::new(
        "You are a historian who writes long, detailed prose.",
        PROMPT,
    )
    .with_options(GenerationOptions {
        temperature: 0.0,
        seed: Some(1),
        max_tokens: a.gen,
        stop: Vec::new(),
    });
    // Warm-up (page in the weights, size the buffers).
    model.chat(request.clone()).await?;
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..a.runs.max(1) {
        let r = model.chat(request.clone()).await?;
        let u = &r.usage;
        pp.push(f64::from(u.prompt_tokens) / (u.prompt_ms.max(1) as f64 / 1000.0));
        tg.push(f64::from(u.completion_tokens) / (u.generation_ms.max(1) as f64 / 1000.0));
        last = Some(r);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    if let Some(r) = last {
        println!(
            "prompt      {} tokens: {:.1} tok/s (median of {}, best {:.1})",
            r.usage.prompt_tokens,
            median(&mut pp.clone()),
            pp.len(),
            best(&pp)
        );
        println!(
            "generation  {} tokens: {:.1} tok/s (median of {}, best {:.1})",
            r.usage.completion_tokens,
            median(&mut tg.clone()),
            tg.len(),
            best(&tg)
        );
    }
    Ok(())
}
