//! After the load: was every call sluice answered charged and logged? Reads the gateway's own
//! figures through the admin API — consume rows and the quota they charged (`/api/log/stat`),
//! root's `used_quota` (the bench key is root's and unlimited, so every charge lands there),
//! and `/api/reconcile` — and holds them against the calls the load generator saw answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;

use crate::client::admin_get;

#[derive(Debug, Serialize)]
pub struct Accounting {
    /// Calls answered 2xx with a complete body, warm-up and set-up included.
    pub answered: u64,
    /// Calls that failed (a failed call may or may not have been charged).
    pub failed: u64,
    /// Consume rows in the gateway's log.
    pub rows: i64,
    /// Quota those rows charged.
    pub charged: i64,
    /// What root's balance says was used.
    pub used_quota: i64,
    pub reconcile_clean: bool,
}

impl Accounting {
    /// Every answered call has its row (a failed one may have one too), the rows charged what
    /// the balance lost, and every balance agrees with its rows.
    pub fn pass(&self) -> bool {
        let answered = i64::try_from(self.answered).unwrap_or(i64::MAX);
        let failed = i64::try_from(self.failed).unwrap_or(i64::MAX);
        self.rows >= answered
            && self.rows <= answered.saturating_add(failed)
            && self.charged == self.used_quota
            && self.reconcile_clean
    }

    pub fn measured(&self) -> String {
        let failed = if self.failed > 0 {
            format!(" (+{} failed)", self.failed)
        } else {
            String::new()
        };
        format!(
            "{} calls answered{failed}, {} consume rows, {} quota charged, used_quota {}, reconcile {}",
            self.answered,
            self.rows,
            self.charged,
            self.used_quota,
            if self.reconcile_clean {
                "clean"
            } else {
                "NOT clean"
            }
        )
    }
}

fn int(v: &Value, field: &str, what: &str) -> anyhow::Result<i64> {
    v[field]
        .as_i64()
        .with_context(|| format!("{what} has no integer {field:?}: {v}"))
}

/// Waits for the gateway to finish every relay (a call the load generator gave up on may
/// still be settling), then reads its figures.
pub async fn check(
    sluice: SocketAddr,
    admin: &str,
    answered: u64,
    failed: u64,
) -> anyhow::Result<Accounting> {
    // No event tells an outside process that the gateway is idle: poll its gauge, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = admin_get(sluice, admin, "/api/stats").await?;
        if int(&stats, "relays_in_flight", "/api/stats")? == 0 {
            break;
        }
        if Instant::now() >= deadline {
            bail!("relays still in flight 30 s after the load ended: {stats}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let totals = admin_get(sluice, admin, "/api/log/stat").await?;
    let user = admin_get(sluice, admin, "/api/users/1").await?;
    let reconcile = admin_get(sluice, admin, "/api/reconcile").await?;
    Ok(Accounting {
        answered,
        failed,
        rows: int(&totals, "requests", "/api/log/stat")?,
        charged: int(&totals, "quota", "/api/log/stat")?,
        used_quota: int(&user, "used_quota", "/api/users/1")?,
        reconcile_clean: reconcile["clean"].as_bool() == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_needs_its_row_and_the_money_must_agree() {
        let ok = Accounting {
            answered: 10,
            failed: 2,
            rows: 11,
            charged: 55,
            used_quota: 55,
            reconcile_clean: true,
        };
        assert!(ok.pass());
        assert!(
            !Accounting { rows: 9, ..ok }.pass(),
            "an answer without its row"
        );
        assert!(
            !Accounting { rows: 13, ..ok }.pass(),
            "rows nobody asked for"
        );
        assert!(
            !Accounting {
                used_quota: 50,
                ..ok
            }
            .pass()
        );
        assert!(
            !Accounting {
                reconcile_clean: false,
                ..ok
            }
            .pass()
        );
    }
}
