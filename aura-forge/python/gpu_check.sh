#!/usr/bin/env bash
# GPU check for the forge: LoRA training with peft on CUDA, from what the device tool
# carries in the work tree (no internet, no model files: SmolLM2's GGUF is too big).
#
# Model: the first causal LM found in the machine's Hugging Face cache (offline), else
# a model with SmolLM2-135M's exact architecture (LlamaConfig below) and RANDOM
# weights; the tokenizer is then plain UTF-8 bytes (ids 0-255). With random weights
# the loss says only that training runs and descends; the step rate is the figure.
# Data: aura-forge/python/gpu_check_data.jsonl (24 chat examples, ChatML-rendered).
# LoRA r=8, alpha=16 on q/k/v/o as LocalForge trains it; bf16 autocast.
#
# Writes $OUT/gpu_check.json (steps/s, loss curve, device, model). Fails loudly
# without CUDA. Budget: well under 4 minutes (STEPS=300 by default).
set -euo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" - "$OUT" "${STEPS:-300}" <<'EOF'
import glob, json, os, sys, time
out, steps = sys.argv[1], max(20, int(sys.argv[2]))
t_start = time.time()
import torch
if not torch.cuda.is_available():
    sys.exit("FAIL: CUDA is not available (torch %s, built for CUDA %s)" % (torch.__version__, torch.version.cuda))
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

dev = torch.device("cuda")
torch.manual_seed(0)
rows = [json.loads(l) for l in open("gpu_check_data.jsonl")]
text = lambda ms: "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in ms)

model, tok, source = None, None, None
for cfg in sorted(glob.glob(os.path.expanduser("~/.cache/huggingface/hub/models--*/snapshots/*/config.json"))):
    d = os.path.dirname(cfg)
    size = sum(os.path.getsize(f) for f in glob.glob(d + "/*") if os.path.isfile(f))
    if size > 8e9:  # a model this big would not train 300 steps in the time budget
        print(f"skipping {d}: {size / 1e9:.1f} GB", file=sys.stderr)
        continue
    try:
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
        source = "hf-cache:" + d.split("models--")[1].split("/")[0]
        break
    except Exception as e:
        print(f"skipping {d}: {type(e).__name__}: {e}", file=sys.stderr)
        model, tok = None, None
if model is None:
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    source = "random-init SmolLM2-135M architecture, byte tokenizer"

def encode(ms):
    prompt, reply = text(ms[:-1]) + "<|im_start|>assistant\n", ms[-1]["content"] + "<|im_end|>\n"
    if tok is not None:
        p, r = tok(prompt, add_special_tokens=False)["input_ids"], tok(reply, add_special_tokens=False)["input_ids"]
    else:
        p, r = list(prompt.encode()), list(reply.encode())
    return p + r, [-100] * len(p) + r

data = [encode(r["messages"]) for r in rows]
model = get_peft_model(model.to(dev), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"))
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-3)
B = 8
def batch(i):
    ex = [data[(i * B + k) % len(data)] for k in range(B)]
    n = max(len(x) for x, _ in ex)
    ids = torch.zeros((B, n), dtype=torch.long); lab = torch.full((B, n), -100); mask = torch.zeros((B, n), dtype=torch.long)
    for j, (x, y) in enumerate(ex):
        ids[j, :len(x)], lab[j, :len(y)], mask[j, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids.to(dev), lab.to(dev), mask.to(dev)

losses, tokens = [], 0
model.train()
for step in range(1, steps + 1):
    if step == 11:  # the first steps include CUDA warm-up; time the rest
        torch.cuda.synchronize(); t0 = time.time(); tokens = 0
    ids, lab, mask = batch(step)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    tokens += int(mask.sum())
    losses.append(round(float(loss.detach()), 4))
    if step % 25 == 0 or step == 1:
        print(json.dumps({"step": step, "total": steps, "loss": losses[-1]}), flush=True)
torch.cuda.synchronize()
timed = time.time() - t0
result = {
    "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
    "model": source, "parameters": sum(p.numel() for p in model.parameters()),
    "trainable": sum(p.numel() for p in params), "batch": B, "steps": steps,
    "steps_per_s": round((steps - 10) / timed, 2), "tokens_per_s": round(tokens / timed),
    "seconds_per_step": round(timed / (steps - 10), 4),
    "loss_first": losses[0], "loss_last10_mean": round(sum(losses[-10:]) / 10, 4),
    "loss_curve": losses[::10], "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20),
    "wall_s": round(time.time() - t_start, 1), "unsloth": False,
}
json.dump(result, open(os.path.join(out, "gpu_check.json"), "w"), indent=2)
print(json.dumps(result))
EOF
