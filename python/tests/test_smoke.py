import os
import flightline


def test_connects_and_counts():
    client = flightline.connect(os.environ["FLIGHTLINE_TEST_URI"])
    df = client.query("SELECT count(*) AS n FROM log_entries")
    assert int(df["n"][0]) == int(os.environ["FLIGHTLINE_TEST_ROWS"])
