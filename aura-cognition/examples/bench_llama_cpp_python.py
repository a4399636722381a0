"""The llama-cpp-python side of `bench_local`: same GGUF, same prompt, same thread
count, greedy decoding; prints load time, prompt and generation tokens/s.

    pip install llama-cpp-python   # builds llama.cpp from source
    python aura-cognition/examples/bench_llama_cpp_python.py [--model PATH] [--threads N] [--gen N] [--runs N]
"""

import argparse
import statistics
import time

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

SYSTEM = "You are a historian who writes long, detailed prose."
PROMPT = (
    "The following is a detailed account of the history of the printing press, "
    "its invention by Johannes Gutenberg around 1440, the spread of movable type across Europe, the "
    "effects on literacy, religion, science and politics, the rise of newspapers in the seventeenth "
    "century, the industrial presses of the nineteenth century, and the transition to offset and "
    "digital printing in the twentieth century. Each part is told with dates, names and places, and "
    "the account closes with a reflection on how the press changed the way people share knowledge. "
    "Write the first chapter of this account now, in plain prose, without headings."
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    t = time.perf_counter()
    llm = Llama(
        model_path=a.model,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        n_ctx=4096,
        n_batch=512,
        n_ubatch=512,
        verbose=False,
    )
    load = time.perf_counter() - t
    md = llm.metadata
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    if "tokenizer.chat_template" in md:
        fmt = Jinja2ChatFormatter(
            template=md["tokenizer.chat_template"],
            eos_token=llm.detokenize([llm.token_eos()], special=True).decode(),
            bos_token=llm.detokenize([llm.token_bos()], special=True).decode(),
        )
        prompt = fmt(messages=messages).prompt
    else:
        # No template (Gemma 3 270M is a base model): the same ChatML fallback LocalModel uses.
        prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        prompt += "<|im_start|>assistant\n"
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    print(f"model       {md.get('general.name')} ({a.model})")
    print(f"threads     {a.threads}")
    print(f"load        {load * 1000:.0f} ms")

    def run():
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        t1 = time.perf_counter()
        n = 0
        for tok in llm.generate(tokens, temp=0.0, top_k=1, reset=False):
            if tok == llm.token_eos() or n >= a.gen:
                break
            n += 1
        t2 = time.perf_counter()
        return len(tokens) / (t1 - t0), n / (t2 - t1), n

    run()  # warm-up
    pp, tg = [], []
    n = 0
    for _ in range(max(a.runs, 1)):
        p, g, n = run()
        pp.append(p)
        tg.append(g)
    print(f"prompt      {len(tokens)} tokens: {statistics.median(pp):.1f} tok/s (median of {len(pp)}, best {max(pp):.1f})")
    print(f"generation  {n} tokens: {statistics.median(tg):.1f} tok/s (median of {len(tg)}, best {max(tg):.1f})")


if __name__ == "__main__":
    main()
