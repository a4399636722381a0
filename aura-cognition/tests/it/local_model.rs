//! `LocalModel` against the real SmolLM2-135M-Instruct GGUF (installed by scripts/setup.sh):
//! the conformance suite, then what is particular to the embedded backend.
#![cfg(feature = "local")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aura_cognition::{
    conformance, ChatMessage, ChatRequest, DynLanguageModel, Error, FinishReason,
    GenerationOptions, LanguageModel, LocalModel, LocalModelBuilder,
};
use futures::StreamExt;

fn model_path() -> std::path::PathBuf {
    let path = aura_cognition::default_model_path();
    assert!(
        path.is_file(),
        "the local test model is missing at {}: run scripts/setup.sh (it installs \
         models/SmolLM2-135M-Instruct.Q4_1.gguf), or set AURA_MODEL_PATH",
        path.display()
    );
    path
}

/// One model per test binary: tests share its worker thread (requests queue up).
fn model() -> &'static LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        LocalModelBuilder::from_env()
            .model_path(model_path())
            .build()
            .expect("load the local model")
    })
}

use crate::MODEL_TURN as TURN;

fn greedy(max_tokens: u32) -> GenerationOptions {
    GenerationOptions {
        temperature: 0.0,
        seed: Some(1),
        max_tokens,
        stop: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let _turn = TURN.lock().await;
    conformance::run_all(model()).await;
}

#[tokio::test]
async fn conformance_missing_model() {
    let _turn = TURN.lock().await;
    let built = LocalModel::builder()
        .model_path("/nonexistent/missing.gguf")
        .build()
        .map(|m| Arc::new(m) as DynLanguageModel);
    conformance::missing_model(built).await;
}

#[tokio::test]
async fn loads_fast_and_describes_itself() {
    let _turn = TURN.lock().await;
    let m = LocalModelBuilder::from_env()
        .model_path(model_path())
        .threads(2)
        .context_length(1024)
        .build()
        .unwrap();
    // The target is ≤ 1 s in release builds (see examples/bench_local.rs); leave
    // room here for a debug build on a busy machine.
    assert!(
        m.load_time() < Duration::from_secs(5),
        "load took {:?}",
        m.load_time()
    );
    let info = m.info().await.unwrap();
    assert_eq!(info.context_length, 1024);
    assert_eq!(info.embedding_dim, Some(576));
    assert_eq!(info.details["architecture"], "llama");
    assert_eq!(info.details["chat_template"], "model");
    assert_eq!(info.details["threads"], 2);
    assert_eq!(m.capabilities().backend, "local");
    assert!(m.capabilities().lora);
}

#[test]
fn applies_the_models_own_chat_template() {
    let p = model()
        .render_prompt(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
        .unwrap();
    assert_eq!(
        p,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // SmolLM2's template adds its default system prompt when there is none.
    let p = model().render_prompt(&[ChatMessage::user("Hi")]).unwrap();
    assert!(
        p.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
        "{p}"
    );
}

#[tokio::test]
async fn kv_cache_reuse_gives_the_same_replies() {
    let _turn = TURN.lock().await;
    let cold = LocalModelBuilder::from_env()
        .model_path(model_path())
        .prompt_cache(false)
        .build()
        .unwrap();
    let warm = LocalModelBuilder::from_env()
        .model_path(model_path())
        .build()
        .unwrap();
    let first = ChatRequest::new("You are a helpful assistant.", "Name three fruits.")
        .with_options(greedy(16));
    let a_warm = warm.chat(first.clone()).await.unwrap();
    let a_cold = cold.chat(first.clone()).await.unwrap();
    assert_eq!(a_warm.text, a_cold.text);
    // The conversation goes on: its prefix (the first prompt and reply) is reused.
    let mut second = first.clone();
    second
        .messages
        .push(ChatMessage::assistant(a_warm.text.clone()));
    second
        .messages
        .push(ChatMessage::user("Now name three vegetables."));
    let b_warm = warm.chat(second.clone()).await.unwrap();
    let reused = warm.last_reused_tokens();
    assert!(
        reused >= a_warm.usage.prompt_tokens as usize,
        "only {reused} of the {} shared prompt tokens were reused",
        a_warm.usage.prompt_tokens
    );
    assert_eq!(cold.last_reused_tokens(), 0);
    let b_cold = cold.chat(second).await.unwrap();
    assert_eq!(b_warm.text, b_cold.text, "a reused cache changed the reply");
    // A different prompt shares only a little.
    warm.chat(ChatRequest::new("Be terse.", "Hello").with_options(greedy(4)))
        .await
        .unwrap();
    assert!(warm.last_reused_tokens() < reused);
}

#[tokio::test]
async fn a_prompt_too_long_for_the_context_is_refused() {
    let _turn = TURN.lock().await;
    let m = LocalModelBuilder::from_env()
        .model_path(model_path())
        .context_length(64)
        .build()
        .unwrap();
    let long = "word ".repeat(200);
    match m.chat(ChatRequest::new("s", long)).await {
        Err(Error::ContextTooLong { tokens, limit }) => {
            assert_eq!(limit, 64);
            assert!(tokens > 64);
        }
        other => panic!("expected ContextTooLong, got {other:?}"),
    }
    // The model still works afterwards.
    assert!(m
        .chat(ChatRequest::new("s", "hi").with_options(greedy(4)))
        .await
        .is_ok());
}

#[tokio::test]
async fn slow_calls_time_out() {
    let _turn = TURN.lock().await;
    let m = LocalModelBuilder::from_env()
        .model_path(model_path())
        .timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    let e = m
        .chat(ChatRequest::new("s", "Tell me a long story.").with_options(greedy(200)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn max_tokens_and_stop_sequences() {
    let _turn = TURN.lock().await;
    let r = model()
        .chat(
            ChatRequest::new("You are a storyteller.", "Tell me a long story.")
                .with_options(greedy(7)),
        )
        .await
        .unwrap();
    assert_eq!(r.usage.completion_tokens, 7);
    assert_eq!(r.finish, FinishReason::Length);
}

#[tokio::test]
async fn a_dropped_stream_leaves_the_model_usable() {
    let _turn = TURN.lock().await;
    let mut s = model()
        .chat_stream(
            ChatRequest::new("You are a storyteller.", "Tell me a long story.")
                .with_options(greedy(200)),
        )
        .await
        .unwrap();
    let _first = s.next().await.unwrap().unwrap();
    drop(s);
    let r = model()
        .chat(ChatRequest::new("Be brief.", "Say hi.").with_options(greedy(8)))
        .await
        .unwrap();
    assert!(!r.text.is_empty());
}

#[tokio::test]
async fn structured_output_is_valid_json_even_at_high_temperature() {
    let _turn = TURN.lock().await;
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "source": {"type": "string", "maxLength": 80},
            "tests": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 2}
        },
        "required": ["name", "source", "tests"]
    });
    for seed in 0..2 {
        let r = model()
            .chat(
                ChatRequest::new(
                    "You write Python methods.",
                    "Write a method that reverses a list.",
                )
                .with_schema(schema.clone())
                .with_options(GenerationOptions {
                    temperature: 1.2,
                    seed: Some(seed),
                    max_tokens: 300,
                    stop: vec![],
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let v = r.structured.unwrap();
        aura_cognition::schema::validate(&schema, &v).unwrap();
    }
}

#[tokio::test]
async fn lora_adapters_that_are_missing_or_broken_are_reported() {
    let _turn = TURN.lock().await;
    let e = LocalModelBuilder::from_env()
        .model_path(model_path())
        .lora("/nonexistent/adapter.gguf", 1.0)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::ModelNotFound(_)), "{e:?}");
    let dir = std::env::temp_dir().join(format!("aura-lora-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.gguf");
    std::fs::write(&bogus, b"not a gguf file").unwrap();
    let e = LocalModelBuilder::from_env()
        .model_path(model_path())
        .lora(&bogus, 1.0)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Writes a LoRA adapter GGUF for SmolLM2 (llama, n_embd 576): rank-4 updates of every
/// layer's `attn_q`, with deterministic pseudo-random weights large enough to change
/// what the model says.
fn write_lora(path: &std::path::Path) {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    fn kv_str(out: &mut Vec<u8>, k: &str, v: &str) {
        string(out, k);
        out.extend(8u32.to_le_bytes());
        string(out, v);
    }
    const N: u64 = 576;
    const RANK: u64 = 4;
    const LAYERS: usize = 30;
    let mut tensors: Vec<(String, [u64; 2])> = Vec::new();
    for l in 0..LAYERS {
        tensors.push((format!("blk.{l}.attn_q.weight.lora_a"), [N, RANK]));
        tensors.push((format!("blk.{l}.attn_q.weight.lora_b"), [RANK, N]));
    }
    let mut out = Vec::new();
    out.extend(b"GGUF");
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend(4u64.to_le_bytes());
    kv_str(&mut out, "general.architecture", "llama");
    kv_str(&mut out, "general.type", "adapter");
    kv_str(&mut out, "adapter.type", "lora");
    string(&mut out, "adapter.lora.alpha");
    out.extend(6u32.to_le_bytes());
    out.extend((RANK as f32).to_le_bytes());
    let mut offset = 0u64;
    for (name, dims) in &tensors {
        string(&mut out, name);
        out.extend(2u32.to_le_bytes());
        out.extend(dims[0].to_le_bytes());
        out.extend(dims[1].to_le_bytes());
        out.extend(0u32.to_le_bytes()); // F32
        out.extend(offset.to_le_bytes());
        offset += (dims[0] * dims[1] * 4).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (_, dims) in &tensors {
        let n = dims[0] * dims[1];
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            out.extend((x * 0.5).to_le_bytes());
        }
        let padded = (n * 4).div_ceil(32) * 32;
        out.extend(std::iter::repeat_n(0u8, (padded - n * 4) as usize));
    }
    std::fs::write(path, out).unwrap();
}

#[tokio::test]
async fn a_lora_adapter_changes_the_model_and_scale_zero_does_not() {
    let _turn = TURN.lock().await;
    let dir = std::env::temp_dir().join(format!("aura-lora-ok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let adapter = dir.join("adapter.gguf");
    write_lora(&adapter);
    let request = ChatRequest::new(
        "You are a helpful assistant.",
        "What is the capital of France?",
    )
    .with_options(greedy(12));
    let base = model().chat(request.clone()).await.unwrap().text;
    let with = |scale: f32| {
        LocalModelBuilder::from_env()
            .model_path(model_path())
            .lora(&adapter, scale)
            .build()
            .unwrap()
    };
    let changed = with(1.0);
    assert_eq!(changed.info().await.unwrap().details["lora"]["scale"], 1.0);
    let lora_text = changed.chat(request.clone()).await.unwrap().text;
    assert_ne!(
        lora_text, base,
        "a strong LoRA adapter did not change the reply"
    );
    let neutral = with(0.0).chat(request).await.unwrap().text;
    assert_eq!(neutral, base, "a LoRA adapter at scale 0 changed the reply");
    // Embeddings come from the base model whatever the adapter.
    let t = vec!["fibonacci".to_string()];
    assert_eq!(
        changed.embed(&t).await.unwrap(),
        model().embed(&t).await.unwrap()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_model_without_a_chat_template_falls_back_to_chatml() {
    let _turn = TURN.lock().await;
    // Gemma 3 270M (the base model) carries no chat template; setup fetches it when
    // AURA_FETCH_GEMMA=1.
    let gemma = model_path().with_file_name("gemma-3-270m-q4_k_m.gguf");
    if !gemma.is_file() {
        println!("skipped: run AURA_FETCH_GEMMA=1 scripts/setup.sh to fetch Gemma 3 270M");
        return;
    }
    let m = LocalModelBuilder::from_env()
        .model_path(&gemma)
        .build()
        .unwrap();
    let info = m.info().await.unwrap();
    assert_eq!(info.details["chat_template"], "chatml-fallback");
    assert_eq!(
        m.render_prompt(&[ChatMessage::user("Hi")]).unwrap(),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let r = m
        .chat(ChatRequest::new("Be brief.", "Say hello.").with_options(greedy(8)))
        .await
        .unwrap();
    assert!(r.usage.completion_tokens > 0);
}
