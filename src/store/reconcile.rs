//! The ledger check: every balance and used-quota figure against the rows that explain it.
//!
//! For a user: `used_quota` = charges (consume rows + purged totals), `quota` (the balance) =
//! top-ups − charges, `request_count` = consume rows (+ purged). For a key: `used_quota` =
//! charges, `remain_quota` = its limit top-ups − what charges took from the limit. All read in
//! one read transaction, so the figures are of one moment even while the server writes.

use super::StoreError;
use rusqlite::Connection;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    /// `user` or `key`.
    pub account: &'static str,
    pub id: i64,
    pub name: String,
    /// `balance`, `used_quota` or `request_count`.
    pub field: &'static str,
    /// The figure stored on the account.
    pub stored: i64,
    /// The figure the log rows give.
    pub from_logs: i64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub users_checked: usize,
    pub keys_checked: usize,
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

// `type = 1 AND type <> 2`: the second term is the partial type index's condition
// (`log_query::RARE_TYPE`), without which SQLite would not use that index for the top-ups.
const USERS: &str = "
SELECT u.id, u.username, u.quota, u.used_quota, u.request_count,
       COALESCE(t.credits, 0), COALESCE(c.charged, 0), COALESCE(c.n, 0),
       COALESCE(p.quota, 0), COALESCE(p.rows, 0)
  FROM users u
  LEFT JOIN (SELECT user_id, SUM(quota) AS credits FROM logs
              WHERE type = 1 AND type <> 2 AND key_id IS NULL GROUP BY user_id) t ON t.user_id = u.id
  LEFT JOIN (SELECT user_id, SUM(quota) AS charged, COUNT(*) AS n FROM logs
              WHERE type = 2 GROUP BY user_id) c ON c.user_id = u.id
  LEFT JOIN (SELECT user_id, SUM(quota) AS quota, SUM(rows) AS rows FROM log_purged
              GROUP BY user_id) p ON p.user_id = u.id
 ORDER BY u.id";

const KEYS: &str = "
SELECT k.id, k.name, k.remain_quota, k.used_quota,
       COALESCE(t.credits, 0), COALESCE(c.charged, 0), COALESCE(c.took, 0),
       COALESCE(p.quota, 0), COALESCE(p.key_charge, 0)
  FROM api_keys k
  LEFT JOIN (SELECT key_id, SUM(quota) AS credits FROM logs
              WHERE type = 1 AND type <> 2 AND key_id IS NOT NULL GROUP BY key_id) t ON t.key_id = k.id
  LEFT JOIN (SELECT key_id, SUM(quota) AS charged, SUM(key_charge) AS took FROM logs
              WHERE type = 2 GROUP BY key_id) c ON c.key_id = k.id
  LEFT JOIN (SELECT key_id, SUM(quota) AS quota, SUM(key_charge) AS key_charge FROM log_purged
              GROUP BY key_id) p ON p.key_id = k.id
 ORDER BY k.id";

pub fn run(conn: &Connection) -> Result<Report, StoreError> {
    // One snapshot for both queries (a read transaction on a WAL database blocks no writer).
    let tx = conn.unchecked_transaction()?;
    let mut report = Report::default();
    {
        let mut stmt = tx.prepare(USERS)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            report.users_checked += 1;
            let (id, name): (i64, String) = (r.get(0)?, r.get(1)?);
            let (quota, used, count): (i64, i64, i64) = (r.get(2)?, r.get(3)?, r.get(4)?);
            let (credits, charged, n): (i64, i64, i64) = (r.get(5)?, r.get(6)?, r.get(7)?);
            let (p_quota, p_rows): (i64, i64) = (r.get(8)?, r.get(9)?);
            let mut check = |field, stored, from_logs| {
                if stored != from_logs {
                    report.differences.push(Difference {
                        account: "user",
                        id,
                        name: name.clone(),
                        field,
                        stored,
                        from_logs,
                    });
                }
            };
            check("used_quota", used, charged + p_quota);
            check("balance", quota, credits - charged - p_quota);
            check("request_count", count, n + p_rows);
        }
    }
    {
        let mut stmt = tx.prepare(KEYS)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            report.keys_checked += 1;
            let (id, name): (i64, String) = (r.get(0)?, r.get(1)?);
            let (remain, used): (i64, i64) = (r.get(2)?, r.get(3)?);
            let (credits, charged, took): (i64, i64, i64) = (r.get(4)?, r.get(5)?, r.get(6)?);
            let (p_quota, p_took): (i64, i64) = (r.get(7)?, r.get(8)?);
            let mut check = |field, stored, from_logs| {
                if stored != from_logs {
                    report.differences.push(Difference {
                        account: "key",
                        id,
                        name: name.clone(),
                        field,
                        stored,
                        from_logs,
                    });
                }
            };
            check("used_quota", used, charged + p_quota);
            check("balance", remain, credits - took - p_took);
        }
    }
    tx.commit()?;
    Ok(report)
}
