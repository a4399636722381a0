//! The inference engine: one llama.cpp context (and one for embeddings) owned by the
//! worker thread, with the prompt-prefix KV cache, grammar-constrained sampling,
//! scoring and embedding.

use super::worker::backend;
use super::*;

pub(super) struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// Tokens whose keys/values sit in `ctx`'s cache (sequence 0), in order.
    cached: Vec<LlamaToken>,
    embed_ctx: Option<LlamaContext<'m>>,
    pub(super) template: ChatTemplate,
    pub(super) info: ModelInfo,
    threads: i32,
    n_ctx: usize,
    prompt_cache: bool,
    reused: Arc<AtomicUsize>,
}

impl<'m> Engine<'m> {
    pub(super) fn new(
        model: &'m LlamaModel,
        adapter: Option<(LlamaLoraAdapter, f32)>,
        cfg: &LocalModelBuilder,
        path: &Path,
        reused: Arc<AtomicUsize>,
    ) -> Result<Self> {
        let backend = backend()?;
        let n_ctx = cfg.context_length.min(model.n_ctx_train().max(64));
        let threads = i32::try_from(cfg.threads).unwrap_or(2);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH as u32)
            .with_n_ubatch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = model
            .new_context(backend, params)
            .map_err(|e| backend_err(format!("cannot create a context: {e}")))?;
        if let Some((mut adapter, scale)) = adapter {
            ctx.lora_adapter_set(&mut adapter, scale)
                .map_err(|e| Error::Invalid(format!("cannot apply the LoRA adapter: {e}")))?;
        }
        let template = match model.chat_template(None) {
            Ok(t) => match t.to_string() {
                Ok(src) => {
                    let vocab = model.vocab();
                    let text = |t: LlamaToken| {
                        String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
                    };
                    ChatTemplate::jinja(src, text(vocab.bos()), text(vocab.eos()))
                }
                Err(_) => ChatTemplate::chatml(),
            },
            Err(_) => {
                tracing::warn!(target: "LocalModel", "the model has no chat template; using ChatML");
                ChatTemplate::chatml()
            }
        };
        let meta = |k: &str| model.meta_val_str(k).ok();
        let name = meta("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into())
        });
        let info = ModelInfo {
            name,
            context_length: n_ctx,
            embedding_dim: u32::try_from(model.n_embd()).ok(),
            details: json!({
                "backend": BACKEND,
                "path": path.display().to_string(),
                "architecture": meta("general.architecture"),
                "parameters": model.n_params(),
                "size_bytes": model.size(),
                "context_train": model.n_ctx_train(),
                "chat_template": if template.is_model_template() { "model" } else { "chatml-fallback" },
                "threads": threads,
                "lora": cfg.lora.as_ref().map(|(p, s)| json!({"path": p.display().to_string(), "scale": s})),
            }),
        };
        Ok(Self {
            model,
            ctx,
            cached: Vec::new(),
            embed_ctx: None,
            template,
            info,
            threads,
            n_ctx: n_ctx as usize,
            prompt_cache: cfg.prompt_cache,
            reused,
        })
    }

    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        if vocab.should_add_bos() && tokens.first() != Some(&vocab.bos()) {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// Runs one chat; `Ok(None)` when the receiver went away (the stream was dropped).
    pub(super) fn chat(
        &mut self,
        request: &ChatRequest,
        prompt: &str,
        grammar: Option<&str>,
        deadline: Option<(Instant, Duration)>,
        events: &tmpsc::UnboundedSender<Event>,
    ) -> Result<Option<ChatResponse>> {
        let result = self.chat_inner(request, prompt, grammar, deadline, events);
        if result.is_err() {
            // Whatever state the cache is in, do not trust it.
            self.ctx.clear_kv_cache();
            self.cached.clear();
        }
        result
    }

    fn chat_inner(
        &mut self,
        request: &ChatRequest,
        prompt: &str,
        grammar: Option<&str>,
        deadline: Option<(Instant, Duration)>,
        events: &tmpsc::UnboundedSender<Event>,
    ) -> Result<Option<ChatResponse>> {
        let timed_out = || match deadline {
            Some((at, limit)) if Instant::now() >= at => Some(Error::Timeout(limit)),
            _ => None,
        };
        if let Some(e) = timed_out() {
            return Err(e);
        }
        let opts = &request.options;
        let tokens = self.tokenize_prompt(prompt);
        if tokens.is_empty() {
            return Err(Error::Invalid("the prompt is empty".into()));
        }
        if tokens.len() + 1 > self.n_ctx {
            return Err(Error::ContextTooLong {
                tokens: tokens.len(),
                limit: self.n_ctx,
            });
        }

        // The grammar is kept apart from the sampling chain: a token is first drawn
        // without it and only checked against it; only when it fails is the grammar
        // applied to the whole vocabulary (as llama.cpp's own sampler does) — checking
        // every one of ~50k candidates on every step would dominate a small model's time.
        let mut grammar = match grammar {
            Some(gbnf) => Some(
                LlamaSampler::grammar(self.model, gbnf, "root")
                    .map_err(|e| Error::Invalid(format!("cannot use the schema's grammar: {e}")))?,
            ),
            None => None,
        };
        let mut sampler = if opts.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            let seed = opts.seed.unwrap_or_else(random_seed);
            LlamaSampler::chain_simple([
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::min_p(0.05, 1),
                LlamaSampler::temp(opts.temperature),
                LlamaSampler::dist((seed ^ (seed >> 32)) as u32),
            ])
        };

        // --- the prompt: keep the cached common prefix, decode the rest --------------
        let prompt_started = Instant::now();
        let mut keep = if self.prompt_cache {
            common_prefix(&self.cached, &tokens)
        } else {
            0
        };
        // The last prompt token is always decoded on its own, so its logits come out the
        // same whether or not the rest was cached (same seed, same reply).
        keep = keep.min(tokens.len() - 1);
        if keep < self.cached.len() {
            let trimmed = self
                .ctx
                .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
                .unwrap_or(false);
            if !trimmed {
                self.ctx.clear_kv_cache();
                keep = 0;
            }
            self.cached.truncate(keep);
        }
        let reused = keep;
        self.reused.store(reused, Ordering::Relaxed);
        let mut batch = LlamaBatch::new(BATCH, 1);
        let body = &tokens[keep..tokens.len() - 1];
        for chunk in body.chunks(BATCH) {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                batch
                    .add(t, (self.cached.len() + i) as i32, &[0], false)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| backend_err(format!("decoding the prompt: {e}")))?;
            self.cached.extend_from_slice(chunk);
            if let Some(e) = timed_out() {
                return Err(e);
            }
        }
        let last = tokens[tokens.len() - 1];
        self.decode_one(&mut batch, last)?;
        let prompt_ms = prompt_started.elapsed();

        // --- generation --------------------------------------------------------------
        let generation_started = Instant::now();
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let mut utf8 = Utf8Assembler::default();
        let mut stops = StopFilter::new(&opts.stop);
        let mut text = String::new();
        let mut finish = FinishReason::Length;
        let mut generated = 0u32;
        let emit = |piece: String, text: &mut String| -> bool {
            if piece.is_empty() {
                return true;
            }
            text.push_str(&piece);
            events.send(Ok(StreamChunk::Text(piece))).is_ok()
        };
        while generated < opts.max_tokens {
            if let Some(e) = timed_out() {
                return Err(e);
            }
            let token = sample(
                &self.ctx,
                batch.n_tokens() - 1,
                &mut sampler,
                grammar.as_mut(),
            )
            .ok_or_else(|| backend_err("the sampler chose no token"))?;
            if vocab.is_eog(token) {
                finish = FinishReason::Stop;
                break;
            }
            generated += 1;
            let piece = utf8.push(&vocab.token_to_piece(token, false, None));
            let (out, hit) = stops.push(&piece);
            if !emit(out, &mut text) {
                return Ok(None);
            }
            if hit {
                finish = FinishReason::StopSequence;
                break;
            }
            if self.cached.len() + 1 >= self.n_ctx {
                break; // the context is full: Length
            }
            if generated < opts.max_tokens {
                self.decode_one(&mut batch, token)?;
            }
        }
        if finish != FinishReason::StopSequence {
            let (out, hit) = stops.push(&utf8.finish());
            if hit {
                finish = FinishReason::StopSequence;
            }
            let rest = if hit { String::new() } else { stops.finish() };
            if !emit(out + &rest, &mut text) {
                return Ok(None);
            }
        }
        let generation_ms = generation_started.elapsed();
        tracing::debug!(
            target: "LocalModel",
            prompt_tokens = tokens.len(),
            reused,
            generated,
            prompt_ms = prompt_ms.as_millis() as u64,
            generation_ms = generation_ms.as_millis() as u64,
            "chat"
        );

        let structured = match &request.schema {
            Some(schema) => {
                Some(
                    parse_structured(&text, schema).map_err(|e| match (e, finish) {
                        (Error::InvalidOutput(m), FinishReason::Length) => {
                            Error::InvalidOutput(format!(
                                "{m} (the reply was cut off at max_tokens = {})",
                                opts.max_tokens
                            ))
                        }
                        (e, _) => e,
                    })?,
                )
            }
            None => None,
        };
        Ok(Some(ChatResponse {
            text,
            structured,
            model: self.info.name.clone(),
            finish,
            usage: Usage {
                prompt_tokens: tokens.len() as u32,
                completion_tokens: generated,
                prompt_ms: prompt_ms.as_millis() as u64,
                generation_ms: generation_ms.as_millis() as u64,
            },
        }))
    }

    /// Decodes one token at the next position, keeping its logits.
    fn decode_one(&mut self, batch: &mut LlamaBatch, token: LlamaToken) -> Result<()> {
        batch.clear();
        batch
            .add(token, self.cached.len() as i32, &[0], true)
            .map_err(|e| backend_err(e.to_string()))?;
        self.ctx
            .decode(batch)
            .map_err(|e| backend_err(format!("decoding: {e}")))?;
        self.cached.push(token);
        Ok(())
    }

    /// Summed log-probability of `reply`'s tokens after `prompt`, and their count.
    pub(super) fn score(&mut self, prompt: &str, reply: &str) -> Result<(f64, usize)> {
        let model: &'m LlamaModel = self.model;
        let prompt_tokens = self.tokenize_prompt(prompt);
        let reply_tokens = model.vocab().tokenize(reply.as_bytes(), false, true);
        if prompt_tokens.is_empty() || reply_tokens.is_empty() {
            return Err(Error::Invalid("scoring needs a prompt and a reply".into()));
        }
        let all: Vec<LlamaToken> = prompt_tokens.iter().chain(&reply_tokens).copied().collect();
        if all.len() > self.n_ctx {
            return Err(Error::ContextTooLong {
                tokens: all.len(),
                limit: self.n_ctx,
            });
        }
        // Scoring decodes from position 0: the chat's prompt cache is gone afterwards.
        self.ctx.clear_kv_cache();
        self.cached.clear();
        // Position i's logits predict token i + 1: keep those from the last prompt token
        // on; the last reply token predicts nothing and is not decoded.
        let first = prompt_tokens.len() - 1;
        let inputs = &all[..all.len() - 1];
        let mut batch = LlamaBatch::new(BATCH, 1);
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (c, chunk) in inputs.chunks(BATCH).enumerate() {
            batch.clear();
            let base = c * BATCH;
            for (i, &t) in chunk.iter().enumerate() {
                batch
                    .add(t, (base + i) as i32, &[0], base + i >= first)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| backend_err(format!("decoding for a score: {e}")))?;
            for i in 0..chunk.len() {
                let pos = base + i;
                if pos < first {
                    continue;
                }
                let logits = self.ctx.get_logits_ith(i as i32);
                let target = usize::try_from(all[pos + 1].0).unwrap_or(usize::MAX);
                let Some(&logit) = logits.get(target) else {
                    return Err(backend_err("a reply token is outside the vocabulary"));
                };
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
                sum += logit as f64 - max - z.ln();
                count += 1;
            }
        }
        self.ctx.clear_kv_cache();
        Ok((sum, count))
    }

    pub(super) fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let n_ctx = EMBED_CONTEXT.min(self.model.n_ctx_train().max(64));
        if self.embed_ctx.is_none() {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx))
                .with_n_batch(n_ctx)
                .with_n_ubatch(n_ctx)
                .with_n_threads(self.threads)
                .with_n_threads_batch(self.threads)
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::Mean);
            let ctx = self
                .model
                .new_context(backend()?, params)
                .map_err(|e| backend_err(format!("cannot create an embedding context: {e}")))?;
            self.embed_ctx = Some(ctx);
        }
        let model: &'m LlamaModel = self.model;
        let vocab = model.vocab();
        let Some(ctx) = self.embed_ctx.as_mut() else {
            return Err(backend_err("no embedding context"));
        };
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
            if tokens.is_empty() {
                tokens.push(vocab.bos());
            }
            if tokens.len() > n_ctx as usize {
                return Err(Error::ContextTooLong {
                    tokens: tokens.len(),
                    limit: n_ctx as usize,
                });
            }
            ctx.clear_kv_cache();
            let mut batch = LlamaBatch::new(tokens.len(), 1);
            for (i, &t) in tokens.iter().enumerate() {
                batch
                    .add(t, i as i32, &[0], true)
                    .map_err(|e| backend_err(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| backend_err(format!("embedding: {e}")))?;
            let v = ctx
                .embeddings_seq_ith(0)
                .map_err(|e| backend_err(format!("embedding: {e}")))?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.push(if norm > 0.0 {
                v.iter().map(|x| x / norm).collect()
            } else {
                v.to_vec()
            });
        }
        Ok(out)
    }
}

/// Draws the next token from the logits at `idx`, honouring `grammar` if given, and
/// lets the samplers (and the grammar) accept it.
fn sample(
    ctx: &LlamaContext<'_>,
    idx: i32,
    sampler: &mut LlamaSampler,
    grammar: Option<&mut LlamaSampler>,
) -> Option<LlamaToken> {
    let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
    candidates.apply_sampler(sampler);
    let mut token = candidates.selected_token()?;
    if let Some(grammar) = grammar {
        let mut single =
            LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
        single.apply_sampler(grammar);
        if single
            .data
            .first()
            .is_none_or(|d| d.logit() == f32::NEG_INFINITY)
        {
            let mut all = LlamaTokenDataArray::from_iter(ctx.candidates_ith(idx), false);
            all.apply_sampler(grammar);
            all.apply_sampler(sampler);
            token = all.selected_token()?;
        }
        grammar.accept(token);
    }
    sampler.accept(token);
    Some(token)
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
