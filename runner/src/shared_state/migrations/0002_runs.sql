-- Version 2: one row per run of a window under a lease, kept as history: which worker ran it,
-- under which epoch, when it started and how it ended. `ended_at` stays NULL while the run lasts,
-- and for good when its worker died; the next epoch's row says who took the window over.
CREATE TABLE flightline_runs (
    job          text NOT NULL,
    window_begin timestamptz NOT NULL,
    epoch        bigint NOT NULL,
    owner        text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at     timestamptz,
    outcome      text CHECK (outcome IN ('committed', 'fenced', 'failed', 'cancelled')),
    PRIMARY KEY (job, window_begin, epoch)
);
