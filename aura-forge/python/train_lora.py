#!/usr/bin/env python3
"""AURA forge: train a LoRA adapter on a curated chat dataset, export it as a GGUF LoRA.

Run by aura-forge's LocalForge in the forge venv (scripts/setup.d/40-forge.sh).

1. Loads the base model straight from its GGUF file with transformers (dequantised to
   float32; Q4_1 and friends load this way) and its tokenizer from the same file.
2. Renders every example with the chat template stored in the GGUF, with the same
   settings LocalModel uses at inference (trim_blocks, lstrip_blocks,
   add_generation_prompt, the model's BOS/EOS text; ChatML when the model has none),
   and tokenizes prompt and reply apart, as inference does. Loss is on reply tokens only.
3. Trains a LoRA (peft) on the q/k/v/o attention projections with AdamW.
4. Measures the mean per-token loss of the reference replies on the validation split
   and on the fixed probe set, with the base model (before) and with the adapter (after).
5. Writes the adapter as a GGUF LoRA the way llama.cpp reads it: general.type=adapter,
   adapter.type=lora, adapter.lora.alpha, and per projection `<tensor>.lora_a` (the
   peft A matrix, r x in) and `<tensor>.lora_b` (B, out x r), named after the base
   model's GGUF tensors. For the llama architecture, llama.cpp's converter permutes the
   rows of q and k for its RoPE layout and transformers undoes that when it loads a
   GGUF, so B of q and k gets the same permutation here.

Protocol: stdout carries one JSON object per line: {"event": ...} while loading and
evaluating, {"step", "total", "loss"} after each optimiser step, and last
{"result": {...}} with the figures. Everything else goes to stderr.
"""

import argparse
import json
import math
import os
import random
import sys
import time


def emit(**fields):
    print(json.dumps(fields), flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the base model's GGUF file")
    p.add_argument("--train", required=True, help="train.jsonl")
    p.add_argument("--validation", required=True, help="validation.jsonl")
    p.add_argument("--probes", help="the fixed probe set (JSONL, optional 'persona' field)")
    p.add_argument("--persona", help="use only probes for this persona (all when none match)")
    p.add_argument("--out", required=True, help="directory for adapter.gguf")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    return p.parse_args()


def gguf_fields(path):
    """The GGUF metadata this script needs: architecture, chat template, BOS/EOS."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def value(key):
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    tokens = value("tokenizer.ggml.tokens") or []

    def token_text(key):
        i = value(key)
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else ""

    add_bos = value("tokenizer.ggml.add_bos_token")
    if add_bos is None:
        # llama.cpp's default: SentencePiece vocabularies add BOS, BPE ones do not.
        add_bos = value("tokenizer.ggml.model") == "llama"
    return {
        "arch": value("general.architecture") or "llama",
        "template": value("tokenizer.chat_template"),
        "bos": token_text("tokenizer.ggml.bos_token_id"),
        "eos": token_text("tokenizer.ggml.eos_token_id"),
        "bos_id": value("tokenizer.ggml.bos_token_id"),
        "add_bos": bool(add_bos),
    }


class Renderer:
    """The model's chat template, rendered as LocalModel renders it (see the docstring)."""

    def __init__(self, meta):
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        self.template = env.from_string(meta["template"]) if meta["template"] else None
        self.bos, self.eos = meta["bos"], meta["eos"]

    def render(self, messages, add_generation_prompt):
        if self.template is None:  # LocalModel's ChatML fallback
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
        return self.template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos,
            eos_token=self.eos,
        )

    def split(self, messages):
        """(prompt, reply): the prompt as inference sends it, the reply as the template closes it."""
        prompt = self.render(messages[:-1], True)
        full = self.render(messages, False)
        reply = full[len(prompt):] if full.startswith(prompt) else messages[-1]["content"] + self.eos
        return prompt, reply


def read_jsonl(path, persona=None):
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    if persona:
        mine = [r for r in rows if r.get("persona", "").lower() == persona.lower()]
        rows = mine or rows
    return rows


def encode(rows, renderer, tokenizer, meta, max_tokens):
    """Token ids and labels (-100 on the prompt) for each example."""
    import torch

    out = []
    for row in rows:
        messages = row["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            continue
        prompt, reply = renderer.split(messages)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(reply, add_special_tokens=False)["input_ids"]
        if meta["add_bos"] and meta["bos_id"] is not None and (not p or p[0] != meta["bos_id"]):
            p = [meta["bos_id"]] + p
        r = r[: max_tokens - 8]
        p = p[-(max_tokens - len(r)):]  # too long: the prompt loses its start
        ids = torch.tensor(p + r, dtype=torch.long)
        labels = torch.tensor([-100] * len(p) + r, dtype=torch.long)
        out.append((ids, labels))
    return out


def batch_of(examples, pad_id):
    import torch

    n = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = x, y, 1
    return ids, labels, mask


def token_nll(model, ids, labels, mask):
    """Summed negative log-likelihood of the labelled tokens, and how many there are."""
    import torch.nn.functional as F

    device = next(model.parameters()).device  # the CPU here, CUDA under train_unsloth.py
    ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    keep = target != -100
    nll = F.cross_entropy(logits[keep], target[keep], reduction="sum")
    return nll, int(keep.sum())


def mean_loss(model, examples, pad_id):
    import torch

    if not examples:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            nll, n = token_nll(model, *batch_of([ex], pad_id))
            total, count = total + float(nll), count + n
    return total / count if count else None


def permute_rows(w, n_head):
    """llama.cpp's q/k row permutation (convert_hf_to_gguf's LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_gguf(model, meta, config, alpha, path):
    import gguf
    import numpy as np

    arch_ids = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    arch = arch_ids.get(meta["arch"])
    if arch is None:
        raise SystemExit(f"the gguf package does not know the architecture {meta['arch']!r}")
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    n_head = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_head

    writer = gguf.GGUFWriter(path, meta["arch"])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    written = 0
    for name, module in model.named_modules():
        if not (hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})):
            continue
        # peft: base_model.model.<hf name of the linear layer>
        hf_name = name.split("base_model.model.", 1)[-1]
        gguf_name = names.get_name(hf_name + ".weight", try_suffixes=(".weight",))
        if gguf_name is None:
            raise SystemExit(f"no GGUF tensor name for {hf_name}")
        a = module.lora_A["default"].weight.detach().float().cpu()
        b = module.lora_B["default"].weight.detach().float().cpu()
        if meta["arch"] == "llama":
            if hf_name.endswith("q_proj"):
                b = permute_rows(b, n_head)
            elif hf_name.endswith("k_proj"):
                b = permute_rows(b, n_kv)
        writer.add_tensor(gguf_name + ".lora_a", np.ascontiguousarray(a.numpy()))
        writer.add_tensor(gguf_name + ".lora_b", np.ascontiguousarray(b.numpy()))
        written += 1
    if written == 0:
        raise SystemExit("the model has no LoRA layers to export")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def train_steps(model, train, pad_id, args):
    """AdamW over the trainable (LoRA) parameters for args.steps steps of args.batch
    examples, reshuffled each epoch; reports each step. Returns (losses, seconds)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    order, losses = [], []
    started = time.time()
    model.train()
    for step in range(1, args.steps + 1):
        batch = []
        while len(batch) < args.batch:
            if not order:
                order = list(range(len(train)))
                random.shuffle(order)
            batch.append(train[order.pop()])
        nll, n = token_nll(model, *batch_of(batch, pad_id))
        loss = nll / max(n, 1)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        emit(step=step, total=args.steps, loss=round(float(loss), 6))
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # GPU work is asynchronous: time it whole
    return losses, time.time() - started


def run_result(args, backend, base, sets, losses, losses_eval, seconds, path, tensors, **extra):
    """The figures of a finished run, as both trainers report them."""
    train, validation, probes = sets
    validation_before, validation_after, probe_before, probe_after = losses_eval
    load_seconds, train_seconds, export_seconds = seconds
    tail = losses[-min(5, len(losses)):]
    return {
        "backend": backend,
        "base_model": base,
        "rank": args.rank,
        "alpha": args.alpha,
        "learning_rate": args.lr,
        "steps": args.steps,
        "batch": args.batch,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "probe_examples": len(probes),
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "validation_loss_before": validation_before,
        "validation_loss_after": validation_after,
        "probe_loss_before": probe_before,
        "probe_loss_after": probe_after,
        "load_seconds": round(load_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "seconds_per_step": round(train_seconds / args.steps, 4),
        "export_seconds": round(export_seconds, 3),
        "adapter_tensors": tensors * 2,
        "adapter_bytes": os.path.getsize(path),
        **extra,
    }


def main():
    args = parse_args()
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    t0 = time.time()
    meta = gguf_fields(args.base)
    directory, name = os.path.split(os.path.abspath(args.base))
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        # The weights are dequantised; drop the GGUF quantisation record so nothing
        # downstream (peft, saving) treats the model as quantised.
        model.hf_quantizer.remove_quantization_config(model)
    load_seconds = time.time() - t0
    emit(event="loaded", seconds=round(load_seconds, 2), arch=meta["arch"],
         chat_template="model" if meta["template"] else "chatml-fallback")

    renderer = Renderer(meta)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train = encode(read_jsonl(args.train), renderer, tokenizer, meta, args.max_tokens)
    validation = encode(read_jsonl(args.validation), renderer, tokenizer, meta, args.max_tokens)
    probes = encode(read_jsonl(args.probes, args.persona), renderer, tokenizer, meta, args.max_tokens)
    if not train:
        raise SystemExit("train.jsonl holds no usable example")

    t = time.time()
    validation_before = mean_loss(model, validation, pad_id)
    probe_before = mean_loss(model, probes, pad_id)
    emit(event="evaluated", adapter=False, validation_loss=validation_before, probe_loss=probe_before,
         seconds=round(time.time() - t, 2))

    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    losses, train_seconds = train_steps(model, train, pad_id, args)

    t = time.time()
    validation_after = mean_loss(model, validation, pad_id)
    probe_after = mean_loss(model, probes, pad_id)
    emit(event="evaluated", adapter=True, validation_loss=validation_after, probe_loss=probe_after,
         seconds=round(time.time() - t, 2))

    t = time.time()
    path = os.path.join(args.out, "adapter.gguf")
    tensors = export_gguf(model, meta, model.config, args.alpha, path)
    export_seconds = time.time() - t

    emit(result=run_result(
        args, "local", os.path.abspath(args.base), (train, validation, probes), losses,
        (validation_before, validation_after, probe_before, probe_after),
        (load_seconds, train_seconds, export_seconds), path, tensors,
        torch_threads=torch.get_num_threads(), torch=torch.__version__,
    ))


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code not in (0, None):
            print(f"train_lora.py: {e.code}", file=sys.stderr)
            sys.exit(2)
        raise
    except Exception as e:  # the runner shows stderr's tail: make the cause its last line
        import traceback

        traceback.print_exc()
        print(f"train_lora.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
