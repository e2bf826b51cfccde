"""Browser check of the runner's live status page, run by a Rust integration test.

Drives Debian's headless Chromium (/usr/bin/chromium, not a Playwright download) through the
`playwright` package and checks the page's contract against a live runner:

    python interop/status_page.py URL --jobs a,b,c --failed NAME --error SUBSTRING \
        --running NAME --screenshot PATH.png [--timeout 60]

Prints one `ok: ...` line per check passed and `PASS` last, exit 0. On a failed check it prints
`FAIL: <check>` followed by what the page showed (the job's row as HTML, the values seen, the page
text, script errors), writes the screenshot of the failing page when it can, and exits 1. A
Playwright error (Chromium missing, URL unreachable, ...) prints `FAIL: playwright: <message>` and
exits 1. Bad arguments exit 2 (argparse).
"""

import argparse
import secrets
import sys
import tempfile
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The page polls every second; reading more often only makes the checks notice changes sooner.
POLL_SECONDS = 0.1
PAGE_TEXT_LIMIT = 4000

# One read of everything the checks look at, taken in a single evaluation so that the marker and
# the values it vouches for come from the same document.
SNAPSHOT_JS = """
(names) => {
  const rows = {};
  for (const tr of document.querySelectorAll('table#jobs tr[data-job]')) {
    const name = tr.getAttribute('data-job');
    if (!names.includes(name)) continue;
    const text = (cls) => {
      const td = tr.querySelector('td.' + cls);
      return td === null ? null : td.textContent;
    };
    const stateTd = tr.querySelector('td.state');
    const seen = rows[name];
    rows[name] = {
      count: seen === undefined ? 1 : seen.count + 1,
      html: tr.outerHTML,
      state: text('state'),
      dataState: stateTd === null ? null : stateTd.getAttribute('data-state'),
      rows: text('rows'),
      error: text('error'),
    };
  }
  const updated = document.getElementById('updated');
  return {
    marker: window.__flightlineMarker === undefined ? null : window.__flightlineMarker,
    navigations: performance.getEntriesByType('navigation').length,
    rows: rows,
    updated: updated === null ? null : updated.textContent,
    text: document.body === null ? '' : document.body.innerText,
  };
}
"""


class CheckFailed(Exception):
    """A contract check did not hold; the message says what was expected and what was seen."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Check the flightline status page in headless Chromium.")
    parser.add_argument("url", help="the status page, e.g. http://127.0.0.1:PORT/?token=T")
    parser.add_argument("--jobs", required=True, help="comma-separated job names that must each have a row")
    parser.add_argument("--failed", required=True, help="job whose state must be 'failed'")
    parser.add_argument("--error", required=True, help="text the failed job's error cell must contain")
    parser.add_argument("--running", required=True, help="job whose rows cell must show two different values")
    parser.add_argument("--screenshot", required=True, help="where to write the full-page PNG")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for all checks together")
    args = parser.parse_args(argv)
    args.job_names = [name.strip() for name in args.jobs.split(",") if name.strip()]
    for name in (args.failed, args.running):
        if name not in args.job_names:
            args.job_names.append(name)
    return args


def describe_row(snapshot, name):
    row = snapshot["rows"].get(name)
    if row is None:
        return f"no <tr data-job={name!r}> in table#jobs (page text below)"
    return f"row ({row['count']} with this name): {row['html']}"


def page_text(snapshot):
    text = snapshot["text"]
    if len(text) > PAGE_TEXT_LIMIT:
        return text[:PAGE_TEXT_LIMIT] + f"\n... ({len(text) - PAGE_TEXT_LIMIT} more characters)"
    return text


class Checks:
    """The contract checks, fed one snapshot after another until each has held once."""

    def __init__(self, args):
        self.args = args
        self.passed = []
        self.running_values = []  # distinct plain-integer values of the running job's rows cell
        self.running_other = []  # distinct values that were not plain integers
        self.updated_values = []

    def done(self):
        return len(self.passed) == 4

    def feed(self, snapshot):
        for name, check in (
            ("rows", self.all_rows),
            ("failed", self.failed_job),
            ("running", self.running_rows),
            ("updated", self.updated_changes),
        ):
            if name not in self.passed:
                line = check(snapshot)
                if line is not None:
                    self.passed.append(name)
                    print(f"ok: {line}", flush=True)

    def all_rows(self, snapshot):
        rows = snapshot["rows"]
        if all(rows.get(name, {}).get("count") == 1 for name in self.args.job_names):
            return f"one row per job in table#jobs: {', '.join(self.args.job_names)}"
        return None

    def failed_job(self, snapshot):
        row = snapshot["rows"].get(self.args.failed)
        if row is None or row["state"] is None or row["error"] is None:
            return None
        if row["state"].strip() == "failed" and row["dataState"] == "failed" and self.args.error in row["error"]:
            return (
                f"job {self.args.failed} is failed (text and data-state) "
                f"and its error cell contains {self.args.error!r}"
            )
        return None

    def running_rows(self, snapshot):
        row = snapshot["rows"].get(self.args.running)
        if row is None or row["rows"] is None:
            return None
        value = row["rows"].strip()
        if value.isascii() and value.isdigit():
            if value not in self.running_values:
                self.running_values.append(value)
        elif value not in self.running_other:
            self.running_other.append(value)
        if len(self.running_values) >= 2:
            first, second = self.running_values[:2]
            return f"job {self.args.running} rows changed in place: {first} -> {second}"
        return None

    def updated_changes(self, snapshot):
        value = snapshot["updated"]
        if value is None or not value.strip():
            return None
        if value not in self.updated_values:
            self.updated_values.append(value)
        if len(self.updated_values) >= 2:
            return f"#updated changed: {self.updated_values[0]!r} -> {self.updated_values[1]!r}"
        return None

    def failure(self, snapshot):
        """What each check still open expected, what the page showed, and the page text if a row is missing."""
        args = self.args
        lines = []
        if "rows" not in self.passed:
            lines.append(f"rows: expected exactly one <tr data-job=NAME> in table#jobs for each of {args.job_names}")
            for name in args.job_names:
                lines.append(f"  {name}: {describe_row(snapshot, name)}")
        if "failed" not in self.passed:
            lines.append(
                f"failed: expected job {args.failed} with state text and data-state 'failed' and an error cell "
                f"containing {args.error!r}\n  {describe_row(snapshot, args.failed)}"
            )
        if "running" not in self.passed:
            lines.append(
                f"running: expected the rows cell of job {args.running} to show two different plain integers, "
                f"saw integers {self.running_values} and other values {self.running_other}\n"
                f"  {describe_row(snapshot, args.running)}"
            )
        if "updated" not in self.passed:
            state = "missing" if snapshot["updated"] is None else "present"
            lines.append(
                f"updated: expected the text of #updated to change, saw {self.updated_values} "
                f"(empty values not counted; the element is {state})"
            )
        if any(name not in snapshot["rows"] for name in args.job_names):
            lines.append(f"page text:\n{page_text(snapshot)}")
        return "\n".join(lines)


def take_snapshot(page, args, marker):
    try:
        snapshot = page.evaluate(SNAPSHOT_JS, args.job_names)
    except PlaywrightError as error:
        # Caught mid-reload, evaluate fails with "Execution context was destroyed".
        if "context was destroyed" in error.message or "navigat" in error.message:
            raise CheckFailed(f"no reload: the page navigated while being read: {error.message}") from error
        raise
    if snapshot["marker"] != marker:
        raise CheckFailed(
            "no reload: the page reloaded or navigated away (window.__flightlineMarker is gone), so its values "
            f"no longer come from the page that was loaded; page text now:\n{page_text(snapshot)}"
        )
    return snapshot


def run_checks(page, args):
    page.goto(args.url, wait_until="load")
    marker = secrets.token_hex(16)
    page.evaluate("(marker) => { window.__flightlineMarker = marker; }", marker)
    checks = Checks(args)
    deadline = time.monotonic() + args.timeout
    snapshot = take_snapshot(page, args, marker)
    checks.feed(snapshot)
    while not checks.done():
        if time.monotonic() >= deadline:
            raise CheckFailed(f"after {args.timeout:g}s, not met:\n{checks.failure(snapshot)}")
        page.wait_for_timeout(POLL_SECONDS * 1000)
        snapshot = take_snapshot(page, args, marker)
        checks.feed(snapshot)
    if snapshot["navigations"] != 1:
        raise CheckFailed(
            f"no reload: expected 1 navigation entry, performance.getEntriesByType('navigation') has "
            f"{snapshot['navigations']}"
        )
    print(
        "ok: no reload: the marker set after loading is still there and there is 1 navigation entry",
        flush=True,
    )


class PageErrors:
    """Script errors and failed HTTP responses of the page, kept for the failure report."""

    def __init__(self):
        self.counts = {}

    def add(self, line):
        self.counts[line] = self.counts.get(line, 0) + 1

    def watch(self, page):
        page.on("pageerror", lambda error: self.add(f"page error: {error}"))
        page.on("console", self.on_console)
        page.on("response", self.on_response)

    def on_console(self, message):
        # A failed fetch logs "Failed to load resource" without its URL; on_response reports it with one.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.add(f"console error: {message.text}")

    def on_response(self, response):
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.add(f"HTTP {response.status} for {response.request.method} {response.url}")

    def print(self):
        for line, count in self.counts.items():
            print(f"  {line}" + (f" ({count} times)" if count > 1 else ""), flush=True)


def main(argv):
    args = parse_args(argv)
    errors = PageErrors()
    page = None
    try:
        with (
            sync_playwright() as playwright,
            tempfile.TemporaryDirectory(prefix="flightline-chromium-") as profile,
        ):
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 800},
                timeout=args.timeout * 1000,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(args.timeout * 1000)
                errors.watch(page)
                try:
                    run_checks(page, args)
                except CheckFailed as failure:
                    print(f"FAIL: {failure}", flush=True)
                    errors.print()
                    try:
                        page.screenshot(path=args.screenshot, full_page=True)
                        print(f"  screenshot of the failing page: {args.screenshot}", flush=True)
                    except PlaywrightError as error:
                        print(f"  no screenshot: {error.message}", flush=True)
                    return 1
                page.screenshot(path=args.screenshot, full_page=True)
                print(f"ok: full-page screenshot written to {args.screenshot}", flush=True)
            finally:
                context.close()
    except PlaywrightError as error:
        print(f"FAIL: playwright: {error.message}", flush=True)
        errors.print()
        return 1
    print("PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
