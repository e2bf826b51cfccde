"""The guide's schema analysis: a query's result columns and their sizes, without running it.

    FLIGHTLINE_URI=grpc://127.0.0.1:50051 python python/examples/schema.py ["SELECT ..."]
"""

import os
import sys

import flightline

DEFAULT_SQL = "SELECT time, process_id, level, target, msg, properties FROM log_entries"


def main() -> None:
    sql = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SQL
    client = flightline.connect(
        os.environ.get("FLIGHTLINE_URI", "grpc://127.0.0.1:50051"),
        token=os.environ.get("FLIGHTLINE_TOKEN"),
    )

    # As the Micromegas client: a PreparedStatement with the query and its pyarrow schema.
    statement = client.prepare_statement(sql)
    print(f"{statement.query}\n")
    print(statement.dataset_schema)

    analysis = client.analyze_schema(sql)
    print(f"\n{analysis['column_count']} columns, about {analysis['estimated_row_bytes']:.0f} bytes per row:")
    for column in analysis["columns"]:
        flags = " (time)" if column["temporal"] else ""
        nullable = "nullable" if column["nullable"] else "not null"
        print(f"  {column['name']:<12} {column['type']:<28} {nullable:<9} ~{column['estimated_bytes']:.0f} B{flags}")


if __name__ == "__main__":
    main()
