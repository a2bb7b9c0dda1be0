//! Day buckets in a zone with a whole-hour offset come from the daily rollups with the hours of
//! the neighbouring local day moved across (src/store/usage.rs): each (day, key) must equal the
//! hourly series of the same range cut at local midnight.

use crate::common::TestServer;
use serde_json::Value;
use sluice::store::synthetic::{self, Spec};
use std::collections::BTreeMap;

/// (bucket start, split value) → (requests, quota, tokens).
fn by_bucket(v: &Value, label: impl Fn(i64) -> i64) -> BTreeMap<(i64, String), (i64, i64, i64)> {
    let mut m = BTreeMap::new();
    for p in v["points"].as_array().unwrap() {
        let e = m
            .entry((
                label(p["time"].as_i64().unwrap()),
                p["of"].as_str().unwrap_or("").to_string(),
            ))
            .or_insert((0, 0, 0));
        e.0 += p["requests"].as_i64().unwrap();
        e.1 += p["quota"].as_i64().unwrap();
        e.2 += p["prompt_tokens"].as_i64().unwrap() + p["completion_tokens"].as_i64().unwrap();
    }
    m
}

#[tokio::test]
async fn local_days_equal_the_hours_cut_at_local_midnight() {
    let t = TestServer::start().await;
    let store = t.state.store.clone();
    let spec = Spec {
        rows: 8_000,
        days: 10,
        users: 3,
        keys_per_user: 2,
        seed: 5,
    };
    tokio::task::spawn_blocking(move || synthetic::generate(&store, &spec, |_| {}))
        .await
        .unwrap()
        .unwrap();
    let now = sluice::util::now_secs();
    // Ragged ends, several whole UTC days between them.
    let (s, e) = (now - 8 * 86_400 - 777, now - 3_600 + 123);
    let hours = t
        .get(&format!("/api/usage?bucket=hour&start={s}&end={e}&by=key"))
        .await;
    // East and west, small and large offsets (minutes), where a UTC day's hours are split
    // between two local days in different proportions.
    for off_min in [480, -300, 60, -60, 660, -720, 840] {
        let off = i64::from(off_min) * 60;
        let days = t
            .get(&format!(
                "/api/usage?bucket=day&start={s}&end={e}&by=key&tz={off_min}"
            ))
            .await;
        for p in days["points"].as_array().unwrap() {
            assert_eq!(
                (p["time"].as_i64().unwrap() + off).rem_euclid(86_400),
                0,
                "tz {off_min}: a day starts at local midnight: {p}"
            );
        }
        let want = by_bucket(&hours, |h| (h + off).div_euclid(86_400) * 86_400 - off);
        let got = by_bucket(&days, |d| d);
        assert_eq!(
            got, want,
            "tz {off_min}: day buckets vs hours cut at midnight"
        );
    }
}
