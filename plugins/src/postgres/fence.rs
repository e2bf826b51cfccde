//! Committing a window under its lease: the one statement through which both the runner's
//! shared state and a `postgres_sink` writing into that same database mark a window done.
//!
//! The update matches only while the window is still leased by the same owner under the same
//! epoch, so a worker whose lease another worker took over (it was paused, cut off or slow past
//! its TTL) updates nothing: it is fenced, and whatever it wrote in the same transaction is
//! rolled back with it.

use flightline_core::process::WindowLease;
use tokio_postgres::GenericClient;

/// Marks `lease`'s window committed, and its run in `flightline_runs` ended as committed, in
/// one statement; `Ok(false)` when the lease is no longer held (fenced).
pub async fn commit_window(
    client: &impl GenericClient,
    lease: &WindowLease,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "WITH window_done AS (
                 UPDATE flightline_windows
                 SET state = 'committed', committed_at = now(), lease_expires = NULL
                 WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4
                   AND state = 'leased'
                 RETURNING job),
             run_done AS (
                 UPDATE flightline_runs SET ended_at = clock_timestamp(), outcome = 'committed'
                 WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4
                   AND EXISTS (SELECT 1 FROM window_done))
             SELECT count(*) FROM window_done",
            &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch],
        )
        .await?;
    Ok(row.get::<_, i64>(0) == 1)
}

/// Whether `lease`'s window is committed under exactly this lease (by a sink, in its own
/// transaction): the runner then only has to move the checkpoint.
pub async fn committed_under(
    client: &impl GenericClient,
    lease: &WindowLease,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT 1 FROM flightline_windows
             WHERE job = $1 AND window_begin = $2 AND owner = $3 AND epoch = $4
               AND state = 'committed'",
            &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch],
        )
        .await?;
    Ok(row.is_some())
}

/// The `application_name` of a sink's session while it writes a window under a lease: a digest
/// of (job, window, owner, epoch), which a successor computes to find the session.
const SESSION_TAG: &str = "'flightline ' || left(md5(concat_ws('/', $1::text, \
     extract(epoch FROM $2::timestamptz)::text, $3::text, $4::bigint::text)), 32)";

/// Tags this session as the one writing `lease`'s window, so that a worker taking the window
/// over can cut it off ([`cut_off`]).
pub async fn tag_session(
    client: &impl GenericClient,
    lease: &WindowLease,
) -> Result<(), tokio_postgres::Error> {
    let set = format!("SELECT set_config('application_name', {SESSION_TAG}, false)");
    client.execute(&set, &[&lease.job, &lease.window.begin, &lease.owner, &lease.epoch]).await?;
    Ok(())
}

/// Ends the sessions a predecessor's sink holds open on `lease`'s window (`owner` at `epoch`):
/// a worker paused mid-window keeps its transaction, and with it the locks on the window's
/// rows, which would hold its successor until it resumed. Returns how many were ended.
pub async fn cut_off(
    client: &impl GenericClient,
    lease: &WindowLease,
    owner: &str,
    epoch: i64,
) -> Result<i64, tokio_postgres::Error> {
    let end = format!(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = {SESSION_TAG}"
    );
    let row = client.query_one(&end, &[&lease.job, &lease.window.begin, &owner, &epoch]).await?;
    Ok(row.get(0))
}
