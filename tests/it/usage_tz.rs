//! Usage day buckets in a time zone add up to the logs page's totals for the same range.

use crate::common::TestServer;
use serde_json::Value;
use sluice::store::synthetic::{self, Spec};

fn sum(v: &Value, field: &str) -> i64 {
    v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn day_buckets_in_any_zone_sum_to_the_stat_of_the_same_range() {
    let t = TestServer::start().await;
    let store = t.state.store.clone();
    let spec = Spec {
        rows: 6_000,
        days: 12,
        users: 4,
        keys_per_user: 2,
        seed: 11,
    };
    tokio::task::spawn_blocking(move || synthetic::generate(&store, &spec, |_| {}))
        .await
        .unwrap()
        .unwrap();
    let now = sluice::util::now_secs();
    // Ragged ends on purpose: neither on the hour nor on a day.
    let (s, e) = (now - 9 * 86_400 - 1_234, now - 86_400 + 567);
    let stat = t
        .get(&format!(
            "/api/log/stat?start_timestamp={s}&end_timestamp={e}"
        ))
        .await;
    let want = stat["quota"].as_i64().unwrap();
    assert!(want > 0);
    for (tz, label, exact) in [
        ("", "UTC", true),
        ("&tz=UTC", "UTC", true),
        ("&tz=Asia/Shanghai", "Asia/Shanghai", true),
        ("&tz=America/New_York", "America/New_York", true),
        ("&tz=-300", "-05:00", true),
        ("&tz=Asia/Kolkata", "Asia/Kolkata", false),
        ("&tz=345", "+05:45", false),
    ] {
        for split in ["", "&by=model"] {
            let v = t
                .get(&format!(
                    "/api/usage?bucket=day&start={s}&end={e}{tz}{split}"
                ))
                .await;
            assert_eq!(v["tz"], label, "{tz}");
            assert_eq!(v["tz_exact"], exact, "{tz}");
            assert_eq!(
                sum(&v, "quota"),
                want,
                "{tz}{split}: day buckets vs /api/log/stat"
            );
            assert_eq!(
                sum(&v, "requests") - sum(&v, "errors"),
                stat["requests"].as_i64().unwrap(),
                "{tz}{split}"
            );
            let times: Vec<i64> = v["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["time"].as_i64().unwrap())
                .collect();
            let mut distinct = times.clone();
            distinct.dedup();
            // 9 days and a bit: 9 or 10 local days, whatever the zone.
            assert!(
                (9..=11).contains(&distinct.len()),
                "{tz}: {} buckets",
                distinct.len()
            );
        }
        let h = t
            .get(&format!("/api/usage?bucket=hour&start={s}&end={e}{tz}"))
            .await;
        assert_eq!(sum(&h, "quota"), want, "{tz}: hour buckets");
    }
    // Shanghai days start at 16:00 UTC.
    let v = t
        .get(&format!(
            "/api/usage?bucket=day&start={s}&end={e}&tz=Asia/Shanghai"
        ))
        .await;
    for p in v["points"].as_array().unwrap() {
        assert_eq!(
            p["time"].as_i64().unwrap().rem_euclid(86_400),
            16 * 3600,
            "{p}"
        );
    }
    for bad in ["&tz=Mars/Base", "&tz=900", "&tz="] {
        let r = t
            .api("GET", &format!("/api/usage?bucket=day{bad}"), None)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}
