"""A perf profile's samples by crate: who owns the CPU time (bench/profile.sh prints these).

    python3 bench/perf_crates.py FILE.data [TOP]

Self time only: a function's samples go to the crate that names it, the kernel, or the C library
(its copies apart from its allocator). Generic code inlined into a caller keeps the name of the
generic (`core::iter` adapters, say), so those rows are listed as such, not guessed at.
"""

import collections
import re
import subprocess
import sys

ROW = re.compile(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)")
GENERIC = ("core::iter::", "alloc::vec::", "core::ptr::", "core::slice::", "core::str::")


def owner(dso: str, kind: str, symbol: str) -> str:
    if kind == "k":
        return "kernel"
    if dso.startswith("libc"):
        return "libc: memmove/memcpy" if re.search(r"mem(move|cpy)", symbol) else "libc: malloc and other"
    if dso.startswith("ld-linux"):
        return "dynamic loader"
    name = symbol.lstrip("<")
    if name.startswith(GENERIC):
        return "generic code inlined into callers (" + name.split(" as ")[0].split("<")[0] + ")"
    crate = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name)
    return crate[0] if crate else name[:40]


def by_crate(path: str) -> collections.Counter:
    report = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym", "--stdio", "-q"],
        capture_output=True, text=True, check=True).stdout
    shares = collections.Counter()
    for line in report.splitlines():
        row = ROW.match(line)
        if row:
            shares[owner(row[2], row[3], row[4].strip())] += float(row[1])
    return shares


def main(argv) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    shares = by_crate(argv[0])
    top = int(argv[1]) if len(argv) > 1 else 20
    for name, share in shares.most_common(top):
        print(f"{share:6.2f}%  {name}")
    ours = sum(share for name, share in shares.items() if name.startswith(("flightline", "top_targets")))
    print(f"{ours:6.2f}%  all of Flightline's own crates (flightline_*, top_targets)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
