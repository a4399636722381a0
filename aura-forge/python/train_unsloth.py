#!/usr/bin/env python3
"""AURA forge on a GPU: unsloth QLoRA on a Hugging Face model, exported as a GGUF LoRA
adapter and, when llama.cpp's converter is at hand, a merged GGUF model.

Run by aura-forge's UnslothForge. The same contract as train_lora.py (whose helpers it
imports from the same directory) with these differences:

1. The base is a Hugging Face model (a directory with config.json and safetensors, or a
   name in the local Hugging Face cache: nothing is downloaded) or a GGUF file, loaded
   by unsloth's FastLanguageModel, in 4-bit with --load-in-4bit (QLoRA). unsloth reads
   safetensors only, so a GGUF base is first dequantised by transformers into a
   scratch directory: the adapter then learns on the weights LocalModel serves.
2. Examples are rendered through train_lora.py's Renderer, with the settings LocalModel
   uses at inference: from a GGUF base, its own metadata, as train_lora.py does; from a
   Hugging Face base, the tokenizer's chat template (the GGUF made from this model
   carries the same template).
3. After the adapter, with --llama-cpp DIR (a llama.cpp checkout holding
   convert_hf_to_gguf.py), the LoRA is merged into 16-bit weights and converted to
   model.gguf (--merged-type, default q8_0): what an Ollama server from v0.34.1 on needs,
   since it refuses adapters (ollama/ollama#14969).

Exits with 69 (EX_UNAVAILABLE) when this machine cannot train: torch or unsloth missing,
or no CUDA GPU. Protocol on stdout as in train_lora.py.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # nothing but the outputs lands in the run's directory
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_lora as common  # noqa: E402  (shipped next to this script)

EXIT_UNAVAILABLE = 69

# Hugging Face model_type -> the architecture name llama.cpp's GGUF files use.
GGUF_ARCH = {"mistral": "llama", "gemma3_text": "gemma3"}


def unavailable(message):
    print(f"train_unsloth.py: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_UNAVAILABLE)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="a Hugging Face model directory or cached name")
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--probes")
    p.add_argument("--persona")
    p.add_argument("--out", required=True, help="directory for adapter.gguf (and model.gguf)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="ignored: the GPU does the work")
    p.add_argument("--load-in-4bit", action="store_true", help="QLoRA: a 4-bit base")
    p.add_argument("--llama-cpp", help="a llama.cpp directory with convert_hf_to_gguf.py")
    p.add_argument("--merged-type", default="q8_0", help="the merged GGUF's tensor type")
    return p.parse_args()


def preflight():
    try:
        import torch
    except ImportError:
        unavailable("torch is not installed in this interpreter")
    if not torch.cuda.is_available():
        unavailable("no CUDA GPU here: UnslothForge trains on a GPU (LocalForge trains on the CPU)")
    try:
        from unsloth import FastLanguageModel
    except Exception as e:  # unsloth raises more than ImportError when its stack is incomplete
        unavailable(f"unsloth cannot be imported: {type(e).__name__}: {e}")
    return torch, FastLanguageModel


def export_merged(model, tokenizer, args, path):
    converter = os.path.join(args.llama_cpp, "convert_hf_to_gguf.py")
    if not os.path.isfile(converter):
        raise SystemExit(f"no convert_hf_to_gguf.py in {args.llama_cpp}")
    with tempfile.TemporaryDirectory() as merged_dir:
        model.save_pretrained_merged(merged_dir, tokenizer, save_method="merged_16bit")
        subprocess.run(
            [sys.executable, converter, merged_dir, "--outfile", path, "--outtype", args.merged_type],
            check=True,
            stdout=sys.stderr,  # stdout is the protocol's
        )


def dequantised(gguf_path, scratch):
    """A GGUF base as a Hugging Face directory in `scratch`, for unsloth to load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, name = os.path.split(os.path.abspath(gguf_path))
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)  # the weights are plain now
    model.save_pretrained(scratch)
    tokenizer.save_pretrained(scratch)
    return scratch


def main():
    args = parse_args()
    torch, FastLanguageModel = preflight()
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    t0 = time.time()
    gguf = os.path.isfile(args.base) and args.base.endswith(".gguf")
    with tempfile.TemporaryDirectory() as scratch:
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=dequantised(args.base, scratch) if gguf else args.base,
            max_seq_length=args.max_tokens,
            load_in_4bit=args.load_in_4bit,
            dtype=None,
        )
    if gguf:
        meta = common.gguf_fields(args.base)
    else:
        model_type = model.config.model_type
        meta = {
            "arch": GGUF_ARCH.get(model_type, model_type),
            "template": getattr(tokenizer, "chat_template", None),
            "bos": tokenizer.bos_token or "",
            "eos": tokenizer.eos_token or "",
            # The template writes BOS itself when the model wants one.
            "add_bos": False,
            "bos_id": tokenizer.bos_token_id,
        }
    load_seconds = time.time() - t0
    common.emit(event="loaded", seconds=round(load_seconds, 2), arch=meta["arch"],
                chat_template="model" if meta["template"] else "chatml-fallback",
                gpu=torch.cuda.get_device_name(0), four_bit=args.load_in_4bit)

    renderer = common.Renderer(meta)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train = common.encode(common.read_jsonl(args.train), renderer, tokenizer, meta, args.max_tokens)
    validation = common.encode(common.read_jsonl(args.validation), renderer, tokenizer, meta, args.max_tokens)
    probes = common.encode(common.read_jsonl(args.probes, args.persona), renderer, tokenizer, meta, args.max_tokens)
    if not train:
        raise SystemExit("train.jsonl holds no usable example")

    t = time.time()
    validation_before = common.mean_loss(model, validation, pad_id)
    probe_before = common.mean_loss(model, probes, pad_id)
    common.emit(event="evaluated", adapter=False, validation_loss=validation_before,
                probe_loss=probe_before, seconds=round(time.time() - t, 2))

    model = FastLanguageModel.get_peft_model(
        model,
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=0,
        bias="none",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        use_gradient_checkpointing="unsloth",
        random_state=args.seed,
    )
    torch.cuda.reset_peak_memory_stats()
    losses, train_seconds = common.train_steps(model, train, pad_id, args)

    t = time.time()
    validation_after = common.mean_loss(model, validation, pad_id)
    probe_after = common.mean_loss(model, probes, pad_id)
    common.emit(event="evaluated", adapter=True, validation_loss=validation_after,
                probe_loss=probe_after, seconds=round(time.time() - t, 2))

    t = time.time()
    path = os.path.join(args.out, "adapter.gguf")
    tensors = common.export_gguf(model, meta, model.config, args.alpha, path)
    merged = None
    if args.llama_cpp:
        merged = os.path.join(args.out, "model.gguf")
        export_merged(model, tokenizer, args, merged)
        common.emit(event="merged", path=merged, bytes=os.path.getsize(merged))
    else:
        common.emit(event="merged", skipped="no --llama-cpp directory: adapter only")
    export_seconds = time.time() - t

    common.emit(result=common.run_result(
        args, "unsloth", args.base, (train, validation, probes), losses,
        (validation_before, validation_after, probe_before, probe_after),
        (load_seconds, train_seconds, export_seconds), path, tensors,
        four_bit=args.load_in_4bit,
        merged_bytes=os.path.getsize(merged) if merged else None,
        gpu=torch.cuda.get_device_name(0),
        peak_gpu_bytes=torch.cuda.max_memory_allocated(),
        torch=torch.__version__,
    ))


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code not in (0, None, EXIT_UNAVAILABLE):
            print(f"train_unsloth.py: {e.code}", file=sys.stderr)
            sys.exit(2)
        raise
    except Exception as e:  # the runner shows stderr's tail: make the cause its last line
        import traceback

        traceback.print_exc()
        print(f"train_unsloth.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
