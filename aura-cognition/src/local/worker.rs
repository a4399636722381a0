//! The model's worker thread: it loads the GGUF file (and a facet's LoRA adapter),
//! says whether it is ready, then serves jobs one at a time until the model is dropped.
//! Inference never runs on the async executor.

use super::engine::Engine;
use super::*;

pub(super) struct Ready {
    pub(super) info: ModelInfo,
    pub(super) template: ChatTemplate,
}

pub(super) fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND_CELL: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND_CELL
        .get_or_init(|| {
            // llama.cpp logs go to `tracing` (targets from llama-cpp-2), never to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| backend_err(format!("llama.cpp backend: {e}")))
}

pub(super) fn worker(
    cfg: LocalModelBuilder,
    path: PathBuf,
    reused: Arc<AtomicUsize>,
    ready: mpsc::Sender<Result<Ready>>,
    jobs: mpsc::Receiver<Job>,
) {
    let loaded = (|| -> Result<(LlamaModel, Option<(LlamaLoraAdapter, f32)>)> {
        let backend = backend()?;
        let mut model = LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
            .map_err(|e| {
                Error::ModelNotFound(format!("{}: cannot load as GGUF: {e}", path.display()))
            })?;
        let adapter = match &cfg.lora {
            Some((lora, scale)) => Some((
                model.lora_adapter_init(lora).map_err(|e| {
                    Error::Invalid(format!(
                        "{}: not a usable LoRA adapter: {e}",
                        lora.display()
                    ))
                })?,
                *scale,
            )),
            None => None,
        };
        Ok((model, adapter))
    })();
    let (model, adapter) = match loaded {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut engine = match Engine::new(&model, adapter, &cfg, &path, reused) {
        Ok(engine) => engine,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready
        .send(Ok(Ready {
            info: engine.info.clone(),
            template: engine.template.clone(),
        }))
        .is_err()
    {
        return;
    }
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Chat {
                request,
                prompt,
                grammar,
                deadline,
                events,
            } => {
                let result = engine.chat(&request, &prompt, grammar.as_deref(), deadline, &events);
                match result {
                    Ok(Some(response)) => {
                        let _ = events.send(Ok(StreamChunk::Done(response)));
                    }
                    Ok(None) => {} // the caller went away
                    Err(e) => {
                        let _ = events.send(Err(e));
                    }
                }
            }
            Job::Embed { texts, reply } => {
                let _ = reply.send(engine.embed(&texts));
            }
            Job::Score {
                prompt,
                reply,
                result,
            } => {
                let _ = result.send(engine.score(&prompt, &reply));
            }
        }
    }
}
