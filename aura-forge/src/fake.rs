//! A fake trainer for orchestration tests (feature `test-utils`).

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::*;

/// Pretends to train: reports a falling loss for each step and writes an empty adapter file.
#[derive(Clone, Debug, Default)]
pub struct FakeForge;

#[async_trait]
impl Forge for FakeForge {
    fn capabilities(&self) -> ForgeCapabilities {
        ForgeCapabilities {
            backend: "fake",
            needs_gpu: false,
            gguf_adapter: true,
            merged_model: false,
        }
    }

    async fn train(
        &self,
        job: TrainingJob,
        progress: mpsc::Sender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<TrainedAdapter> {
        if job.lora.steps == 0 {
            return Err(Error::Invalid("a job needs at least one step".into()));
        }
        let mut loss = 4.0;
        for step in 1..=job.lora.steps {
            if *cancel.borrow() {
                return Err(Error::Cancelled);
            }
            loss *= 0.9;
            // A dropped receiver only means nobody is watching.
            let _ = progress
                .send(Progress {
                    step,
                    total: job.lora.steps,
                    loss,
                })
                .await;
            tokio::task::yield_now().await;
        }
        tokio::fs::create_dir_all(&job.output_dir)
            .await
            .map_err(|e| Error::Failed(e.to_string()))?;
        let path = job.output_dir.join(format!("{}-fake.gguf", job.persona));
        tokio::fs::write(&path, b"")
            .await
            .map_err(|e| Error::Failed(e.to_string()))?;
        Ok(TrainedAdapter {
            adapter_path: path.display().to_string(),
            metrics: serde_json::json!({ "final_loss": loss, "steps": job.lora.steps }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &std::path::Path, steps: u32) -> TrainingJob {
        TrainingJob {
            persona: "babs".into(),
            base_model: "base.gguf".into(),
            dataset_dir: dir.into(),
            output_dir: dir.join("out"),
            lora: LoraConfig {
                steps,
                ..LoraConfig::default()
            },
        }
    }

    #[tokio::test]
    async fn reports_every_step_and_honours_cancel() {
        let dir = std::env::temp_dir().join(format!("aura-forge-fake-{}", std::process::id()));
        let (tx, mut rx) = mpsc::channel(64);
        let (_cancel_tx, cancel) = watch::channel(false);
        let adapter = FakeForge.train(job(&dir, 5), tx, cancel).await.unwrap();
        let mut steps = Vec::new();
        while let Ok(p) = rx.try_recv() {
            steps.push(p.step);
        }
        assert_eq!(steps, vec![1, 2, 3, 4, 5]);
        assert!(std::path::Path::new(&adapter.adapter_path).exists());

        let (tx, _rx) = mpsc::channel(64);
        let (_c, cancel) = watch::channel(true);
        assert!(matches!(
            FakeForge.train(job(&dir, 5), tx, cancel).await,
            Err(Error::Cancelled)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
