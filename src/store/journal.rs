//! The log journal: a relayed call's row and charge, committed in one page, folded later.
//!
//! A call's commit used to dirty 14 pages (the log row's, one in each of the nine log indexes,
//! the hourly and daily rollup rows', the user's and the key's): ~60 KiB written per call at
//! one connection, WAL frames and the checkpoint's copies.
//! Now the call commits one row into `log_journal`, a table without secondary indexes, and
//! the writer folds the journal in one transaction: rows into `logs`, sums into the rollups
//! and into the balances, then deletes them. An index page is written once per fold, not once
//! per call.
//!
//! When it folds (see `writer`): before any other write job (so admin changes, manage rows
//! and reconcile act on folded balances and log ids stay in commit order), before any read
//! through [`super::Store::read`] when rows are waiting, once a second while rows wait, once
//! [`FOLD_CHUNK`] rows wait (the oldest that many, in a batch's commit), at shutdown, and at
//! start-up before the balances are loaded.
//!
//! Money: the in-memory ledger is charged before the append is queued, exactly as before;
//! the journal row is the durable record of the charge until the fold moves it, in one
//! transaction, into the log row and the balance columns. A crash between the two leaves the
//! journal row, which start-up folds.

use super::StoreError;
use super::logs::{LogEntry, LogType, log_row_columns};
use rusqlite::{Connection, params};

/// Rows waiting that make the writer fold the oldest this many at the end of a batch rather
/// than wait for the timer. Under load a batch's commit then carries a fold of about this many
/// rows: a second's worth at 10,000 calls/s folded at once held the writer for tens of ms,
/// and every call waited behind it; chunks this size still write each index page about once
/// per chunk.
pub const FOLD_CHUNK: u64 = 1024;

/// The chunk when calls arrive one at a time (the batch that crossed it carried one append).
/// The call after a fold waits for it, on the one core both need. A fold costs ~0.17 ms plus
/// ~6.6 µs a row (1 KiB pages; docs/performance.md), so the chunk sets how long that call
/// waits and how often: 1,024 rows held it ~4 ms (a single connection's p99.9, issue 15); 256
/// rows ~1.7 ms, one call in 256: p99.9 2.3–2.9 ms added. At 32 rows (~0.3 ms, one call in
/// 32) the p99.9 was 1.1–1.3 ms and the p99 0.75 ms (0.43–0.48 at 256; the goal is 1 ms), at
/// 2.3 → 3.1 KiB written per call (each fold rewrites the indexes' last pages once more; the
/// budget is 8). 16 rows did no better (1.4–2.4 ms: the fold's fixed part dominates). Under
/// concurrency the batch's callers are answered before the fold and the next batch absorbs
/// the wait, so folds stay at [`FOLD_CHUNK`] there, where bytes per call are tight.
pub const FOLD_CHUNK_ALONE: u64 = 32;

/// Who a journal row charges.
#[derive(Debug, Clone, Copy)]
pub struct Charge {
    pub user_id: i64,
    pub key_id: i64,
    /// The key has a limit of its own: the charge comes off its `remain_quota` too.
    pub key_limited: bool,
    pub quota: i64,
}

/// Appends a call's row; with `charge`, the fold applies it to the user's and key's balances
/// (as [`super::logs::record_charge`] does at once).
pub fn append(
    conn: &Connection,
    mut e: LogEntry,
    charge: Option<Charge>,
) -> Result<(), StoreError> {
    if let Some(c) = charge {
        e.quota = c.quota;
        e.key_charge = if c.key_limited { c.quota } else { 0 };
    }
    let (user, key) = (charge.map(|c| c.user_id), charge.map(|c| c.key_id));
    conn.prepare_cached(concat!(
        "INSERT INTO log_journal (",
        log_row_columns!(),
        ", charge_user, charge_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
         ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)"
    ))?
    .execute(rusqlite::params_from_iter(
        e.values()
            .into_iter()
            .chain([&user as &dyn rusqlite::ToSql, &key]),
    ))?;
    Ok(())
}

/// Rows waiting in the journal.
pub fn waiting(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM log_journal")?
        .query_row([], |r| r.get(0))?)
}

/// Moves every journal row into `logs`, the rollups and the balances, and empties the
/// journal; returns how many rows moved. Runs inside the caller's transaction: all of it
/// happens or none.
pub fn fold(conn: &Connection) -> Result<usize, StoreError> {
    fold_oldest(conn, i64::MAX)
}

/// [`fold`] of the oldest `limit` rows only (all when fewer wait).
pub fn fold_oldest(conn: &Connection, limit: i64) -> Result<usize, StoreError> {
    // The last row to move: ids only grow, so `id <= last` is the oldest `limit` rows, and
    // rows appended later in this transaction stay for the next fold.
    let last: Option<i64> = conn
        .prepare_cached("SELECT id FROM log_journal ORDER BY id LIMIT 1 OFFSET ?1 - 1")?
        .query_row([limit], |r| r.get(0))
        .ok();
    let last = last.unwrap_or(i64::MAX);
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM log_journal WHERE id <= ?1")?
        .query_row([last], |r| r.get(0))?;
    if n == 0 {
        return Ok(0);
    }
    // Balances first, summed per user and per key: one row update each, however many calls.
    conn.prepare_cached(
        "UPDATE users SET quota = quota - j.q, used_quota = used_quota + j.q,
            request_count = request_count + j.n
         FROM (SELECT charge_user AS uid, SUM(quota) AS q, COUNT(*) AS n FROM log_journal
               WHERE charge_user IS NOT NULL AND id <= ?1 GROUP BY charge_user) AS j
         WHERE users.id = j.uid",
    )?
    .execute([last])?;
    conn.prepare_cached(
        "UPDATE api_keys SET remain_quota = remain_quota - j.kc, used_quota = used_quota + j.q,
            last_used_at = j.at
         FROM (SELECT charge_key AS kid, SUM(key_charge) AS kc, SUM(quota) AS q,
                      MAX(created_at) AS at FROM log_journal
               WHERE charge_key IS NOT NULL AND id <= ?1 GROUP BY charge_key) AS j
         WHERE api_keys.id = j.kid",
    )?
    .execute([last])?;
    // The rows, in journal (= commit) order, so log ids keep the order calls were recorded.
    conn.prepare_cached(concat!(
        "INSERT INTO logs (",
        log_row_columns!(),
        ") SELECT ",
        log_row_columns!(),
        " FROM log_journal WHERE id <= ?1 ORDER BY id"
    ))?
    .execute([last])?;
    for (table, period) in [("usage_hourly (hour", 3600), ("usage_daily (day", 86_400)] {
        conn.prepare_cached(&roll_up_sql(table))?.execute(params![
            period,
            LogType::Consume as i64,
            LogType::Error as i64,
            last
        ])?;
    }
    conn.prepare_cached("DELETE FROM log_journal WHERE id <= ?1")?
        .execute([last])?;
    Ok(n as usize)
}

/// The rollup upsert of every consume and error row in the journal, grouped as
/// `logs::roll_up` keys them (NULLs as 0 or ''; the period start rounded down as
/// `rem_euclid` does, negative times included).
fn roll_up_sql(table_and_period: &str) -> String {
    format!(
        "INSERT INTO {table_and_period}, type, user_id, key_id, model, channel_id, user_group, status,
            requests, prompt_tokens, completion_tokens, quota, latency_ms)
         SELECT created_at - ((created_at % ?1) + ?1) % ?1, type, IFNULL(user_id, 0),
            IFNULL(key_id, 0), IFNULL(model, ''), IFNULL(channel_id, 0), IFNULL(user_group, ''),
            IFNULL(status, 0), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(quota),
            SUM(IFNULL(latency_ms, 0))
         FROM log_journal WHERE type IN (?2, ?3) AND id <= ?4
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
         ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            quota = quota + excluded.quota,
            latency_ms = latency_ms + excluded.latency_ms"
    )
}

/// Folds in a transaction of its own on a connection that is not the writer's (start-up,
/// before the writer and the balances exist).
pub fn fold_now(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match fold(conn) {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{logs, migrate};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrate::run(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO users (id, username, password_hash, role, quota, created_at)
                VALUES (1, 'ann', 'x', 'user', 100000, 0), (2, 'bob', 'x', 'user', 100000, 0);
             INSERT INTO api_keys (id, user_id, name, digest, prefix, unlimited, remain_quota, created_at)
                VALUES (1, 1, 'a', x'01', 'sk-a', 0, 50000, 0), (2, 1, 'b', x'02', 'sk-b', 1, 0, 0),
                       (3, 2, 'c', x'03', 'sk-c', 0, 50000, 0);",
        )
        .unwrap();
        c
    }

    /// (entry, charge) for a mix of calls: three keys, two users, consume and error rows,
    /// two hours and a day boundary, a playground call (no key id on the row), NULL fields.
    fn calls() -> Vec<(LogEntry, Option<Charge>)> {
        let mut out = Vec::new();
        for i in 0..60i64 {
            let (user, key) = [(1, 1), (1, 2), (2, 3)][(i % 3) as usize];
            let consume = i % 7 != 0;
            let e = LogEntry {
                created_at: 86_400 * 3 - 3_700 + i * 97,
                log_type: if consume {
                    LogType::Consume as i64
                } else {
                    LogType::Error as i64
                },
                request_id: format!("r{i}"),
                user_id: Some(user),
                username: Some(format!("u{user}")),
                key_id: (i % 11 != 0).then_some(key),
                key_name: Some(format!("k{key}")),
                channel_id: (i % 5 != 0).then_some(i % 2 + 1),
                group: Some("default".into()),
                model: (i % 13 != 0).then(|| format!("m{}", i % 4)),
                upstream_model: Some("up".into()),
                prompt_tokens: i * 3,
                completion_tokens: i,
                latency_ms: (i % 6 != 0).then_some(i * 10),
                ttfb_ms: Some(i),
                is_stream: i % 2 == 0,
                status: Some(if consume { 200 } else { 502 }),
                usage_source: consume.then(|| "upstream".into()),
                content: (i % 9 == 0).then(|| "note".into()),
                ..Default::default()
            };
            let charge = consume.then_some(Charge {
                user_id: user,
                key_id: key,
                key_limited: key != 2,
                quota: i * 4,
            });
            // As settle fills it: the row's quota is the charge.
            let e = LogEntry {
                quota: charge.map_or(0, |c| c.quota),
                ..e
            };
            out.push((e, charge));
        }
        out
    }

    fn dump(c: &Connection, sql: &str) -> Vec<String> {
        let mut st = c.prepare(sql).unwrap();
        let n = st.column_count();
        st.query_map([], |r| {
            Ok((0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_fold_leaves_the_rows_rollups_and_balances_that_writing_each_call_at_once_left() {
        let at_once = db();
        for (e, charge) in calls() {
            match charge {
                Some(c) => {
                    logs::record_charge(&at_once, c.user_id, c.key_id, c.key_limited, c.quota, e)
                        .unwrap();
                }
                None => {
                    logs::insert(&at_once, &e).unwrap();
                }
            }
        }
        let folded = db();
        // Three folds, the later ones onto rollup rows the first made: all 30, then the
        // oldest 10 of the next 30, then the rest.
        for (i, (e, charge)) in calls().into_iter().enumerate() {
            append(&folded, e, charge).unwrap();
            if i == 29 {
                assert_eq!(fold_now(&folded).unwrap(), 30);
            }
        }
        assert_eq!(fold_oldest(&folded, 10).unwrap(), 10);
        assert_eq!(waiting(&folded).unwrap(), 20);
        assert_eq!(fold_oldest(&folded, 100).unwrap(), 20);
        assert_eq!(waiting(&folded).unwrap(), 0);
        assert_eq!(fold_now(&folded).unwrap(), 0);
        for sql in [
            "SELECT * FROM logs ORDER BY id",
            "SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
            "SELECT * FROM usage_daily ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
            "SELECT id, quota, used_quota, request_count FROM users ORDER BY id",
            "SELECT id, remain_quota, used_quota, last_used_at FROM api_keys ORDER BY id",
        ] {
            let want = dump(&at_once, sql);
            let got = dump(&folded, sql);
            assert!(want.len() >= 2, "{sql}: {want:?}");
            assert_eq!(got.len(), want.len(), "{sql}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{sql}");
            }
        }
    }
}
