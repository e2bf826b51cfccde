-- Version 1: jobs with their checkpoint, and one row per window with its lease.
--
-- A window is leased by one worker at a time: `owner` and `epoch` say who holds it, and
-- `lease_expires` until when. Taking a window over raises `epoch`, and a commit is accepted only
-- under the epoch the committing worker was given (fencing): a worker that lost its lease
-- can never commit over its successor.
CREATE TABLE flightline_jobs (
    job         text PRIMARY KEY,
    config_hash text NOT NULL,
    checkpoint  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flightline_windows (
    job           text NOT NULL REFERENCES flightline_jobs (job) ON DELETE CASCADE,
    window_begin  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    state         text NOT NULL CHECK (state IN ('leased', 'committed')),
    owner         text,
    epoch         bigint NOT NULL DEFAULT 1,
    lease_expires timestamptz,
    committed_at  timestamptz,
    PRIMARY KEY (job, window_begin),
    CHECK (window_end > window_begin)
);

CREATE INDEX flightline_windows_leases ON flightline_windows (lease_expires)
    WHERE state = 'leased';
