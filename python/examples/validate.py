"""The guide's query validation before execution: the built-in validators on the parsed SQL and on
the result schema the server reports (the query is not run).

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/validate.py ["SELECT ..."]

Exits with status 1 when the query would be refused under policy "deny".
"""

import os
import sys

import flightline

QUERIES = [
    # No time range and ORDER BY without LIMIT: two warnings.
    "SELECT time, msg FROM log_entries ORDER BY time DESC",
    # The same with a LIMIT, checked with a time range: nothing to say.
    "SELECT time, msg FROM log_entries ORDER BY time DESC LIMIT 100",
]


def report(client: flightline.Client, sql: str, begin=None) -> bool:
    result = client.validate(sql, policy="deny", begin=begin)
    print(f"{sql}\n  range: {begin or 'none'}; denied: {result['denied']}")
    for finding in result["findings"]:
        print(f"  [{finding['severity']}] {finding['code']}: {finding['message']}")
        print(f"      -> {finding['recommendation']}")
    if not result["findings"]:
        print("  no findings")
    return not result["denied"]


def main() -> int:
    client = flightline.connect(
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )
    if len(sys.argv) > 1:
        return 0 if report(client, sys.argv[1]) else 1
    ok = report(client, QUERIES[0])
    ok = report(client, QUERIES[1], begin="1h") and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
