#!/usr/bin/env python3
"""Read the per-process Valgrind logs of test/valgrind/run and judge them.

An error block (between the VALGRINDERROR markers) with a frame in
engineering_metrics.so is ours and fails the check; any other block is
printed as PostgreSQL's or a library's, and fails the check only with
EM_VALGRIND_STRICT=1.  Prints a summary either way.
"""
import os
import re
import sys

OURS = re.compile(r"engineering_metrics\.so")


def blocks(path):
    text = open(path, errors="replace").read()
    return re.findall(r"VALGRINDERROR-BEGIN\n(.*?)VALGRINDERROR-END", text, re.S)


def main():
    logs = sys.argv[1]
    ours, others, processes = [], [], 0
    for name in sorted(os.listdir(logs)):
        processes += 1
        for b in blocks(os.path.join(logs, name)):
            (ours if OURS.search(b) else others).append((name, b))
    print("valgrind: %d processes, %d errors in engineering_metrics, %d elsewhere"
          % (processes, len(ours), len(others)))
    for name, b in others[:20]:
        print("---- not ours (%s)\n%s" % (name, b))
    for name, b in ours:
        print("---- OURS (%s)\n%s" % (name, b))
    strict = os.environ.get("EM_VALGRIND_STRICT") == "1"
    return 1 if ours or (strict and others) else 0


if __name__ == "__main__":
    sys.exit(main())
