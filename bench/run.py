"""Flightline against bare arrow-flight, the Python clients and roapi, in one run.

Started by bench/run.sh (which builds the binaries and the Python venv first). Every line reads
the same query from the same server in a process of its own; the process's CPU seconds and peak
RSS come from wait4(), the server's CPU seconds from /proc. Lines are interleaved across the
repetitions and the median is reported; the server ceiling and the loopback copy run in the
same repetitions as the lines they are compared with. Writes a Markdown table, a JSON file and a PNG chart.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE_SQL = "SELECT time, level, target, msg FROM log_entries WHERE level <= 3"
# The server's ceiling: the guide query's batches produced in full inside the server (EXPLAIN
# ANALYZE drains the plan and discards each batch), nothing encoded or sent but the plan's text.
CEILING_SQL = "EXPLAIN ANALYZE " + GUIDE_SQL
SERVER_QUERIES = {
    "full scan": "SELECT time, level, target, msg FROM log_entries",
    "filter": GUIDE_SQL,
    "group by": "SELECT target, level, count(*) AS n FROM log_entries GROUP BY target, level",
}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One process run: what it printed and what it cost."""

    out: dict
    wall: float
    cpu: float
    rss_mib: float
    server_cpu: float


@dataclass
class Line:
    """A benchmark line and its runs."""

    key: str
    title: str
    runs: list = field(default_factory=list)
    note: str = ""

    def median(self, attr: str) -> float:
        values = [getattr(r, attr) if attr != "seconds" else r.out.get("seconds", r.wall) for r in self.runs]
        return statistics.median(values) if values else float("nan")

    def rows(self) -> int:
        return int(statistics.median([r.out.get("rows", 0) for r in self.runs])) if self.runs else 0

    def rows_per_s(self) -> float:
        seconds = self.median("seconds")
        return self.rows() / seconds if seconds > 0 else float("nan")

    def bytes_per_s(self) -> float:
        """The bytes the line itself counted (the loopback's copy, a result's values)."""
        seconds = self.median("seconds")
        return self.runs[0].out["bytes"] / seconds if seconds > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# processes


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return float("nan")


def measure(cmd: list, server_pid: int | None = None, timeout: float = 900, env=None) -> Run:
    """Runs `cmd` to its end; its JSON output (if any), wall time, CPU seconds and peak RSS."""
    server_before = cpu_of(server_pid) if server_pid else 0.0
    started = time.perf_counter()
    # stderr goes to a file: a chatty child must never block on a full pipe while its stdout
    # (one JSON line) is read; wait4 instead of wait, for the child's own rusage.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=env)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            stdout = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            proc.stdout.close()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{tail}")
    out = {}
    for text in reversed(stdout.decode(errors="replace").splitlines()):
        if text.startswith("{"):
            out = json.loads(text)
            break
    server_cpu = cpu_of(server_pid) - server_before if server_pid else float("nan")
    return Run(out, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, server_cpu)


class Server:
    """A Flight SQL server process on 127.0.0.1 that logs its address (on stdout, or stderr with
    `log_on_stderr`) as `pattern`'s first group; stopped on exit."""

    def __init__(self, cmd: list, pattern: str, name: str, log_on_stderr: bool = False, env=None):
        self.name = name
        if log_on_stderr:
            pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
        else:
            pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
        self.proc = subprocess.Popen(cmd, text=True, env=env, **pipes)
        log = self.proc.stderr if log_on_stderr else self.proc.stdout
        self.uri = None
        found = threading.Event()

        def read():
            # Reads to the end, so that the server never blocks on a full pipe.
            for text in log:
                match = re.search(pattern, text)
                if match and not found.is_set():
                    self.uri = "grpc://" + match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(120):
            self.stop()
            raise RuntimeError(f"{name} did not report its address: {' '.join(map(str, cmd))}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def flightline_server(flightline: Path, table: Path, in_memory: bool = True, env=None) -> Server:
    """`flightline serve` on `table`, read into memory at start (as roapi does) unless not asked."""
    cmd = [flightline, "serve", "--listen", "127.0.0.1:0", "--demo-rows", "0", "--query-timeout", "0"]
    cmd += ["--table", f"log_entries={table}"] + (["--in-memory"] if in_memory else [])
    return Server(cmd, r"listening on grpc://(\S+)", f"flightline serve ({flightline.parent.name})", env=env)


def roapi_server(venv: Path, table: Path) -> Server:
    cmd = [venv / "bin/roapi", "--addr-flight-sql", "127.0.0.1:0", "--addr-http", "127.0.0.1:0"]
    cmd += ["--addr-postgres", "127.0.0.1:0", "-t", f"log_entries={table}"]
    env = dict(os.environ, RUST_LOG="info")
    return Server(cmd, r"Listening on (\S+) for FlightSQL", "roapi", log_on_stderr=True, env=env)


def wait_ready(bench: Path, uri: str):
    """roapi logs its address as it starts listening: wait until a query answers."""
    for _ in range(100):
        try:
            measure([bench, "sdk", "--uri", uri, "--sql", "SELECT 1"], timeout=30)
            return
        except RuntimeError:
            time.sleep(0.1)
    raise RuntimeError(f"{uri} never answered SELECT 1")


# ---------------------------------------------------------------------------------------------
# data


def parquet_of(flightline: Path, rows: int, data: Path) -> Path:
    """The demo's log_entries as Parquet, generated once per size and kept under bench/data."""
    path = data / f"log_entries-{rows}.parquet"
    if path.exists():
        return path
    data.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows} demo rows into {path} ...", flush=True)
    cmd = [flightline, "serve", "--listen", "127.0.0.1:0", "--demo-rows", str(rows), "--query-timeout", "0"]
    with Server(cmd, r"listening on grpc://(\S+)", "demo server") as demo:
        sql = "SELECT * FROM log_entries"
        subprocess.run(
            [flightline, "query", "--uri", demo.uri, "--format", "parquet", "-o", path, "--preserve-dictionary", sql],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


# ---------------------------------------------------------------------------------------------
# lines


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = ROOT / "target" / ("debug" if args.profile == "dev" else args.profile)
        self.flightline = self.bin / "flightline"
        self.bench = self.bin / "flightline-bench"
        self.plugin = self.bin / "libtop_targets.so"
        self.dev_flightline = ROOT / "target/debug/flightline"
        self.venv = ROOT / ".venv"
        self.python = self.venv / "bin/python"
        self.lines: dict = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="flightline-bench-"))
        self.python_package()

    def python_package(self):
        """The `flightline` package of this build (python/flightline + the extension module),
        on PYTHONPATH for the Python lines: the same code `pip install ./python` installs."""
        package = self.tmp / "python" / "flightline"
        shutil.copytree(ROOT / "python/flightline", package)
        shutil.copy(self.bin / "libflightline_native.so", package / "_native.abi3.so")
        os.environ["PYTHONPATH"] = str(package.parent)

    def line(self, key: str, title: str, note: str = "") -> Line:
        return self.lines.setdefault(key, Line(key, title, note=note))

    def rust(self, sub: str, uri: str, sql: str = GUIDE_SQL, *extra) -> list:
        return [self.bench, sub, "--uri", uri, "--sql", sql, *extra]

    def python_line(self, name: str, uri: str, sql: str = GUIDE_SQL) -> list:
        return [self.python, ROOT / "bench/clients.py", name, "--uri", uri, "--sql", sql]

    def job_file(self, uri: str, metrics: bool) -> Path:
        path = self.tmp / f"job-{'metrics' if metrics else 'plain'}.toml"
        text = f'[server]\nuri = "{uri}"\n\n'
        if metrics:
            text += '[metrics]\nlisten = "127.0.0.1:0"\n\n'
        text += f'[runner]\nstate_dir = "{self.tmp / "state"}"\n\n'
        text += '[[job]]\nname = "errors_by_target"\n'
        text += f'sql = "{GUIDE_SQL}"\n'
        text += 'processors = [\n  { name = "count_by", options = { column = "level", threshold = 2, group_by = ["target"] } },\n]\n'
        path.write_text(text)
        return path

    def ceiling_lines(self, server: Server) -> dict:
        """The ceilings lines are compared with: the server producing the guide query's batches
        with nothing sent, and a plain loopback TCP copy (256 MiB in a quick run, else 4 GiB)."""
        copy = str(256 << 20 if getattr(self.args, "quick", False) else 4 << 30)
        return {
            "ceiling": ("server ceiling: scan + filter inside the server, nothing sent",
                        self.rust("sdk", server.uri, CEILING_SQL)),
            "10": ("loopback TCP copy (bytes/s ceiling)", [self.bench, "loopback", "--bytes", copy]),
        }

    def main_lines(self, server: Server) -> dict:
        """Lines 1-8 against one server, as commands keyed by line."""
        uri = server.uri
        run = lambda job: [self.flightline, "run", job, "--once", "--progress", "never"]
        commands = {
            "1": ("bare arrow-flight DoGet drain", self.rust("flight", uri)),
            "2": ("Flightline query_stream drain", self.rust("sdk", uri)),
            "3": ("Flightline QueryExecutor + count_by", self.rust("job", uri)),
            "3b": ("QueryExecutor + top_targets (static)", self.rust("job", uri, GUIDE_SQL, "--processor", "top-targets")),
            "4a": ("runner job, metrics endpoint on", run(self.job_file(uri, True))),
            "4b": ("runner job, metrics off", run(self.job_file(uri, False))),
            "5": (
                "QueryExecutor + top_targets (dynamic plugin)",
                self.rust("job", uri, GUIDE_SQL, "--processor", "plugin", "--plugin", str(self.plugin)),
            ),
            "6": ("Micromegas Python, the guide's loop", self.python_line("micromegas-guide", uri)),
            "7": ("ADBC Python + pyarrow.compute", self.python_line("adbc", uri)),
            "6f": ("flightline Python, the guide's loop (pyarrow.compute)", self.python_line("flightline-guide", uri)),
        }
        for copies in (1, 2, 4, 8):
            commands[f"8x{copies}"] = (
                f"{copies} concurrent copies of line 3",
                self.rust("job", uri, GUIDE_SQL, "--copies", str(copies)),
            )
        # The same clients on the full scan (every row, no filter): a result the server sends
        # faster than the clients read it, so that the clients' own costs separate.
        full = SERVER_QUERIES["full scan"]
        commands["F1"] = ("full scan: bare arrow-flight", self.rust("flight", uri, full))
        commands["F2"] = ("full scan: Flightline query_stream", self.rust("sdk", uri, full))
        commands["F3"] = ("full scan: QueryExecutor + count_by", self.rust("job", uri, full))
        commands["F6"] = ("full scan: Micromegas guide loop", self.python_line("micromegas-guide", uri, full))
        commands["F7"] = ("full scan: ADBC + pyarrow.compute", self.python_line("adbc", uri, full))
        commands["F6f"] = ("full scan: flightline Python guide loop", self.python_line("flightline-guide", uri, full))
        return commands

    def repeat(self, commands: dict, server: Server, reps: int):
        for rep in range(reps):
            for key, (title, cmd) in commands.items():
                run = measure(cmd, server.pid)
                if key.startswith("4"):
                    # The runner prints no JSON: its rows are line 3's, its time the process's.
                    run.out = {"rows": self.lines["3"].runs[-1].out["rows"], "seconds": run.wall}
                self.line(key, title).runs.append(run)
                print(f"  rep {rep + 1}/{reps} line {key:>4}: {run.out.get('seconds', run.wall):7.2f} s, "
                      f"cpu {run.cpu:6.2f} s, rss {run.rss_mib:7.1f} MiB, server cpu {run.server_cpu:6.2f} s", flush=True)

    def check_rows(self, expected: int):
        for key, line in self.lines.items():
            if key in ("ceiling", "10") or key.startswith(("9", "11")):
                continue
            copies = int(key.split("x")[1]) if "x" in key else 1
            want = self.lines["F1"].runs[0].out.get("rows") if key.startswith("F") else expected * copies
            for run in line.runs:
                if run.out.get("rows") != want:
                    raise RuntimeError(f"line {key} read {run.out.get('rows')} rows, expected {want}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in log_entries (default 10M)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each line (median reported)")
    parser.add_argument("--quick", action="store_true", help="200k rows, one repetition: a smoke run")
    parser.add_argument("--profile", default="release", help="cargo profile of the binaries measured")
    parser.add_argument("--out", type=Path, help="where results go (bench/results; target/bench-quick for --quick)")
    parser.add_argument("--data", type=Path, default=ROOT / "bench/data", help="cached Parquet files")
    parser.add_argument("--build-note", default="", help="what building the measured binaries cost")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.reps = 200_000, 1
    args.out = args.out or ROOT / ("target/bench-quick" if args.quick else "bench/results")
    return args


def missing_figures(lines: dict) -> list:
    """Lines that produced no figure: no run, or no rows (bytes for the loopback) per second."""
    missing = []
    for key, line in lines.items():
        seconds = line.median("seconds")
        amount = line.runs[0].out.get("bytes" if key == "10" else "rows", 0) if line.runs else 0
        if not line.runs or not math.isfinite(seconds) or seconds <= 0 or amount <= 0:
            missing.append(key)
    return missing


def main(argv) -> int:
    args = parse_args(argv)
    b = Bench(args)
    started = time.perf_counter()
    table = parquet_of(b.flightline, args.rows, args.data)
    table4 = parquet_of(b.flightline, args.rows * 4, args.data)

    print(f"\n== lines 1-8: {args.rows} rows, `{GUIDE_SQL}`, {args.reps} reps", flush=True)
    with flightline_server(b.flightline, table) as server:
        # The ceilings run in the same reps as the lines compared with them, so that a drift
        # of the machine during the run moves both sides of those ratios alike.
        ceilings = b.ceiling_lines(server)
        commands = {"ceiling": ceilings["ceiling"], **b.main_lines(server), "10": ceilings["10"]}
        b.repeat(commands, server, args.reps)
        ceiling = b.lines["ceiling"]
        expected = b.lines["1"].rows()
        b.check_rows(expected)
        ceiling_rows = expected / ceiling.median("seconds")
        print("== line 9: memory at 1x", flush=True)
        for rep in range(args.reps):
            b.line("9a", "peak RSS of line 3 at 1x rows").runs.append(measure(b.rust("job", server.uri), server.pid))
            b.line("9c", "Micromegas query() at 1x rows").runs.append(
                measure(b.python_line("micromegas-query", server.uri), server.pid))
    print("== line 9: memory at 4x", flush=True)
    # From disk: the 4x table need not fit in memory, and the client's peak is what is measured.
    with flightline_server(b.flightline, table4, in_memory=False) as server:
        for rep in range(args.reps):
            b.line("9b", "peak RSS of line 3 at 4x rows").runs.append(measure(b.rust("job", server.uri), server.pid))
            b.line("9d", "Micromegas query() at 4x rows").runs.append(
                measure(b.python_line("micromegas-query", server.uri), server.pid))

    print("== line 11: servers on the same Parquet file, drained by line 1's client", flush=True)
    servers = [("roapi", lambda: roapi_server(b.venv, table))]
    servers.append((f"flightline serve ({args.profile})", lambda: flightline_server(b.flightline, table)))
    servers.append((f"flightline serve ({args.profile}, from disk)",
                    lambda: flightline_server(b.flightline, table, in_memory=False)))
    if args.profile != "dev" and b.dev_flightline.exists():
        servers.append(("flightline serve (dev, README)", lambda: flightline_server(b.dev_flightline, table)))
    for name, start in servers:
        with start() as server:
            wait_ready(b.bench, server.uri)
            for query, sql in SERVER_QUERIES.items():
                line = b.line(f"11 {name} {query}", f"{name}: {query}")
                for _ in range(args.reps):
                    line.runs.append(measure(b.rust("flight", server.uri, sql), server.pid))
                print(f"  {name:32} {query:10} {line.median('seconds'):7.3f} s", flush=True)

    elapsed = time.perf_counter() - started
    report = Report(b, args, ceiling_rows, elapsed)
    paths = report.write()
    print(report.markdown)
    print("\nwritten: " + ", ".join(str(p) for p in paths))
    missing = missing_figures(b.lines)
    if missing:
        print(f"no figure from line(s) {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# report


def command_args(argv: list) -> list:
    """The arguments a reader would type: run.sh adds --build-note itself."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--build-note":
            skip = True
        elif not arg.startswith("--build-note="):
            shown.append(arg)
    return shown


def machine() -> str:
    model = "unknown CPU"
    for text in Path("/proc/cpuinfo").read_text().splitlines():
        if text.startswith("model name"):
            model = text.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({model}), {int(mem) / 1024 / 1024:.0f} GiB, "
            f"Linux {platform.release()}, {rustc}, Python {platform.python_version()}")


class Report:
    def __init__(self, b: Bench, args, ceiling_rows: float, elapsed: float):
        self.b, self.args, self.ceiling_rows, self.elapsed = b, args, ceiling_rows, elapsed
        self.lines = b.lines
        base = self.lines["1"]
        self.bytes_per_row = statistics.median([r.out["bytes"] / max(r.out["rows"], 1) for r in base.runs])
        self.markdown = self.render()

    def ratio(self, a: str, b: str, attr: str = "rows_per_s") -> float:
        get = (lambda l: l.rows_per_s()) if attr == "rows_per_s" else (lambda l: l.median(attr))
        return get(self.lines[a]) / get(self.lines[b])

    def fastest(self, keys=("1", "2", "3")) -> str:
        return max(keys, key=lambda k: self.lines[k].rows_per_s())

    def loopback_bps(self) -> float:
        return self.lines["10"].bytes_per_s()

    def concurrency_ceiling(self, copies: int) -> float:
        """The most `copies` jobs can gain over one on this machine when CPU-bound: each copy
        costs what line 8x1 cost the client and the server together, spread over every core."""
        one = self.lines["8x1"]
        cpu = one.median("cpu") + one.median("server_cpu")
        return min(copies, (os.cpu_count() or 1) * one.median("seconds") / cpu)

    def targets(self) -> list:
        r = self.ratio
        full = self.fastest(("F1", "F2", "F3"))
        full_share = self.lines[full].bytes_per_s() / self.loopback_bps()
        ceiling4 = self.concurrency_ceiling(4)
        line11 = []
        for query in SERVER_QUERIES:
            ours = self.lines.get(f"11 flightline serve ({self.args.profile}) {query}")
            theirs = self.lines.get(f"11 roapi {query}")
            if ours and theirs:
                line11.append((f"line 11 {query}: flightline serve ({self.args.profile}) vs roapi, speed",
                               theirs.median("seconds") / ours.median("seconds"), ">=", 1.0))
        # The README's build serves its GROUP BY within 2x of the production build's time.
        dev = self.lines.get("11 flightline serve (dev, README) group by")
        release = self.lines.get(f"11 flightline serve ({self.args.profile}) group by")
        if dev and release:
            line11.append((f"line 11 group by: flightline serve (dev, README) / ({self.args.profile}), time",
                           dev.median("seconds") / release.median("seconds"), "<=", 2.0))
        return [
            ("line 2 / line 1 rows/s", r("2", "1"), ">=", 0.97),
            ("line 2 / line 1 CPU-s", r("2", "1", "cpu"), "<=", 1.05),
            ("line 3 / line 1 CPU-s", r("3", "1", "cpu"), "<=", 1.10),
            ("line 3 / line 6 CPU-s", r("3", "6", "cpu"), "<=", 0.20),
            ("line 3 / line 6 peak RSS", r("3", "6", "rss_mib"), "<=", 0.20),
            ("line 3 / line 6 rows/s", r("3", "6"), ">=", 10.0),
            ("full scan: line 2 / line 1 rows/s (F2 / F1)", r("F2", "F1"), ">=", 0.97),
            ("full scan: line 2 / line 1 CPU-s (F2 / F1)", r("F2", "F1", "cpu"), "<=", 1.05),
            ("full scan: line 3 / line 1 CPU-s (F3 / F1)", r("F3", "F1", "cpu"), "<=", 1.10),
            ("full scan: line 3 / line 6 CPU-s (F3 / F6)", r("F3", "F6", "cpu"), "<=", 0.20),
            ("full scan: line 3 / line 6 rows/s (F3 / F6)", r("F3", "F6"), ">=", 10.0),
            ("full scan: flightline Python / Micromegas rows/s (F6f / F6)", r("F6f", "F6"), ">=", 3.0),
            ("full scan: flightline Python / Micromegas CPU-s (F6f / F6)", r("F6f", "F6", "cpu"), "<=", 1 / 3),
            ("full scan: flightline Python / Rust guide job CPU-s (F6f / F3)", r("F6f", "F3", "cpu"), "<=", 1.3),
            ("metrics on / off rows/s (4a / 4b)", r("4a", "4b"), ">=", 0.98),
            ("dynamic / static rows/s (5 / 3b)", r("5", "3b"), ">=", 0.97),
            ("4 concurrent / 1 job, aggregate rows/s (1.7, or 95% of the CPU ceiling above when that is lower)",
             r("8x4", "8x1"), ">=", round(min(1.7, 0.95 * ceiling4), 2)),
            (f"fastest client (line {self.fastest()}) / server ceiling, rows/s",
             self.lines[self.fastest()].rows_per_s() / self.ceiling_rows, ">=", 0.8),
            (f"full scan: fastest client's bytes (line {full}) / loopback TCP", full_share, ">=", 0.5),
            ("peak RSS at 4x / 1x rows (9b / 9a)", r("9b", "9a", "rss_mib"), "<=", 1.1),
            *line11,
        ]

    def render(self) -> str:
        args = self.args
        out = [f"# Flightline benchmark, {datetime.date.today().isoformat()}", ""]
        out.append(f"- Machine: {machine()}")
        out.append(f"- Binaries: cargo profile `{args.profile}`" + (f" ({args.build_note})" if args.build_note else ""))
        out.append(f"- Data: demo `log_entries`, {args.rows} rows in Parquet, served by `flightline serve --table --in-memory` "
                   "(read into memory at start, as roapi does; line 9 at 4x from disk); "
                   f"query `{GUIDE_SQL}` ({self.lines['1'].rows()} rows, {self.bytes_per_row:.0f} Arrow bytes per row)")
        out.append(f"- {args.reps} repetitions per line, interleaved; medians. Whole run {self.elapsed / 60:.1f} min. "
                   "Command: `" + " ".join(["bench/run.sh", *command_args(sys.argv[1:])]) + "`")
        fastest = self.lines[self.fastest()]
        ceiling = self.lines["ceiling"]
        out.append(f"- Server ceiling (`{CEILING_SQL}`: every batch of the query produced, none encoded "
                   f"or sent): {self.ceiling_rows / 1e6:.2f} M rows/s at {ceiling.median('server_cpu'):.2f} "
                   f"server CPU-s; the fastest client line ({fastest.key}) reaches "
                   f"{fastest.rows_per_s() / self.ceiling_rows:.0%} of it, with the server spending "
                   f"{fastest.median('server_cpu'):.2f} CPU-s to produce and send and the client "
                   f"{fastest.median('cpu'):.2f} CPU-s to read, on {os.cpu_count()} cores")
        one = self.lines["8x1"]
        out.append(f"- Concurrency ceiling: one job (line 8x1) costs {one.median('cpu'):.2f} client + "
                   f"{one.median('server_cpu'):.2f} server CPU-s in {one.median('seconds'):.3f} s, so "
                   f"{os.cpu_count()} cores run at most {self.concurrency_ceiling(4):.2f}x its rows/s "
                   f"however many copies run; 4 copies reached {self.ratio('8x4', '8x1'):.2f}x")
        loop_bps = self.loopback_bps()
        out.append(f"- Loopback TCP ceiling (line 10): {loop_bps / 1e6:,.0f} MB/s")
        out += ["", "| line | what | rows/s | MB/s | % of loopback | wall s | CPU-s | server CPU-s | rows/s vs 1 | CPU-s vs 1 | peak RSS MiB |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        base = self.lines["1"]
        for key, line in self.lines.items():
            if key in ("ceiling", "10") or key.startswith("11"):
                continue
            rps = line.rows_per_s()
            mbs = rps * self.bytes_per_row / 1e6
            out.append(
                f"| {key} | {line.title} | {rps:,.0f} | {mbs:,.0f} | {100 * mbs * 1e6 / loop_bps:.1f} | "
                f"{line.median('seconds'):.3f} | {line.median('cpu'):.2f} | {line.median('server_cpu'):.2f} | "
                f"{rps / base.rows_per_s():.2f} | {line.median('cpu') / base.median('cpu'):.2f} | {line.median('rss_mib'):.0f} |"
            )
        out += ["", "Line 11: the servers on the same Parquet file, each query drained by line 1's client.", "",
                "| server | query | rows | wall s | server CPU-s | rows/s |", "|---|---|---:|---:|---:|---:|"]
        for key, line in self.lines.items():
            if key.startswith("11"):
                name, query = line.title.split(": ", 1)
                out.append(f"| {name} | {query} | {line.rows():,} | {line.median('seconds'):.3f} | "
                           f"{line.median('server_cpu'):.2f} | {line.rows_per_s():,.0f} |")
        out += ["", "Targets (ratios from this run):", "", "| target | measured | wanted | met |", "|---|---:|---|---|"]
        for name, value, op, wanted in self.targets():
            met = value >= wanted if op == ">=" else value <= wanted
            out.append(f"| {name} | {value:.3f} | {op} {wanted} | {'yes' if met else '**no**'} |")
        out += ["", "Notes: wall s is the client's own time from connecting to the last row (process time for "
                "line 4, which prints no figure; line 5 loads its plugin before connecting, once per process as "
                "the runner does at start, so the load is in its CPU-s but not its wall s); CPU-s and peak RSS are the whole client process's (wait4), "
                "Python's imports included; MB/s is rows/s times line 1's Arrow bytes per row. Line 8 sums "
                "the rows of all copies. Lines F*: the same clients on the full scan (10x the rows, no filter), "
                "where the server outpaces the clients; their ratios are listed apart from the guide's query's."]
        return "\n".join(out) + "\n"

    def chart(self, path: Path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = [k for k in self.lines if k not in ("ceiling", "10") and not k.startswith(("11", "9"))]
        labels = [f"{k}: {self.lines[k].title}" for k in keys]
        fig, (left, right) = plt.subplots(1, 2, figsize=(15, 0.45 * len(keys) + 2), sharey=True)
        left.barh(labels, [self.lines[k].rows_per_s() / 1e6 for k in keys], color="#3b7dd8")
        left.axvline(self.ceiling_rows / 1e6, color="#c0392b", linestyle="--", label="server ceiling")
        left.set_xlabel("M rows/s (higher is better)")
        left.legend(loc="lower right")
        right.barh(labels, [self.lines[k].median("cpu") for k in keys], color="#e67e22", label="client")
        right.barh(labels, [self.lines[k].median("server_cpu") for k in keys],
                   left=[self.lines[k].median("cpu") for k in keys], color="#95a5a6", label="server")
        right.set_xlabel("CPU seconds (lower is better)")
        right.legend(loc="lower right")
        left.invert_yaxis()
        fig.suptitle(f"Flightline benchmark, {self.args.rows:,} rows, {datetime.date.today().isoformat()}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def write(self) -> list:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"{datetime.date.today().isoformat()}-{self.args.profile}-{self.args.rows}"
        md, js, png = stem.with_suffix(".md"), stem.with_suffix(".json"), stem.with_suffix(".png")
        md.write_text(self.markdown + f"\n![chart]({png.name})\n")
        data = {k: [r.__dict__ for r in l.runs] for k, l in self.lines.items()}
        js.write_text(json.dumps({"args": {k: str(v) for k, v in vars(self.args).items()}, "lines": data}, indent=1))
        self.chart(png)
        return [md, js, png]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
