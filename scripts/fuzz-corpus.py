#!/usr/bin/env python3
"""Packs a cargo-fuzz corpus directory into one file for the repository, and back.

The format is gzip over records of a 4-byte little-endian length and the input's bytes,
in name order; the fuzz_corpus tests read it the same way. One file instead of tens of
thousands keeps the repository light.

  /usr/bin/python3 scripts/fuzz-corpus.py pack aura-guard/fuzz/corpus/audit aura-guard/fuzz/audit.corpus.gz
  /usr/bin/python3 scripts/fuzz-corpus.py unpack aura-guard/fuzz/audit.corpus.gz aura-guard/fuzz/corpus/audit
"""
import gzip
import hashlib
import os
import struct
import sys


def pack(directory, path):
    names = sorted(os.listdir(directory))
    # mtime=0: the same corpus packs to the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
        for name in names:
            try:
                with open(os.path.join(directory, name), "rb") as f:
                    data = f.read()
            except FileNotFoundError:  # a running fuzzer replaced it with a smaller one
                continue
            out.write(struct.pack("<I", len(data)))
            out.write(data)
    print(f"packed {len(names)} inputs into {path} ({os.path.getsize(path)} bytes)")


def unpack(path, directory):
    os.makedirs(directory, exist_ok=True)
    count = 0
    with gzip.open(path, "rb") as f:
        while header := f.read(4):
            (length,) = struct.unpack("<I", header)
            data = f.read(length)
            with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as out:
                out.write(data)
            count += 1
    print(f"unpacked {count} inputs into {directory}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2], sys.argv[3])
