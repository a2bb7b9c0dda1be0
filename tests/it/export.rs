//! `GET /api/log/export` and `/api/log/self/export`: the filter's rows as streamed CSV whose
//! totals equal `/api/log/stat` for the same filter.

use crate::common::{TestServer, send};
use serde_json::{Value, json};
use sluice::store::synthetic::{self, Spec};

const PASSWORD: &str = "correct horse battery staple";

/// (header, rows) of a CSV body.
fn parse(body: &[u8]) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_reader(body);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r.records().collect::<Result<_, _>>().unwrap();
    (header, rows)
}

fn sum(header: &[String], rows: &[&csv::StringRecord], col: &str) -> i64 {
    let i = header.iter().position(|h| h == col).unwrap();
    rows.iter().map(|r| r[i].parse::<i64>().unwrap()).sum()
}

#[tokio::test]
async fn csv_totals_equal_the_stat_totals_for_the_same_filter() {
    let t = TestServer::start().await;
    let store = t.state.store.clone();
    // ~5,000 rows over two days: several export batches, ragged range ends.
    let spec = Spec {
        rows: 5_000,
        days: 2,
        users: 5,
        keys_per_user: 2,
        seed: 7,
    };
    tokio::task::spawn_blocking(move || synthetic::generate(&store, &spec, |_| {}))
        .await
        .unwrap()
        .unwrap();
    t.state.catalog.reload().await.unwrap();
    let now = sluice::util::now_secs();
    let (s, e) = (now - 36 * 3600 - 123, now - 3 * 3600 + 77);
    for filter in [
        format!("start_timestamp={s}&end_timestamp={e}"),
        format!("start_timestamp={s}&type=consume,error&model_name=gpt-4o-mini"),
        "type=consume&order=asc".to_string(),
    ] {
        let r = t
            .api("GET", &format!("/api/log/export?{filter}"), None)
            .await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text());
        assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
        let cd = r.headers["content-disposition"].to_str().unwrap();
        assert!(
            cd.starts_with("attachment; filename=\"sluice-logs-"),
            "{cd}"
        );
        assert_eq!(r.headers["transfer-encoding"], "chunked");
        let (header, rows) = parse(&r.body);
        assert_eq!(header[0], "id");
        assert!(header.contains(&"cost".to_string()) && header.contains(&"currency".to_string()));
        // The totals take the filters, not the order.
        let stat = t
            .get(&format!(
                "/api/log/stat?{}",
                filter.replace("&order=asc", "")
            ))
            .await;
        // The stat counts consume rows unless the filter names types; the export has every
        // row of the filter.
        let counted: Vec<&csv::StringRecord> = rows
            .iter()
            .filter(|r| filter.contains("type=") || &r[3] == "consume")
            .collect();
        let n = counted.len() as i64;
        assert_eq!(n, stat["requests"].as_i64().unwrap(), "{filter}");
        assert!(
            n > 2_000 || filter.contains("model_name"),
            "{filter}: {n} rows"
        );
        assert_eq!(
            sum(&header, &counted, "quota"),
            stat["quota"].as_i64().unwrap(),
            "{filter}"
        );
        assert_eq!(
            sum(&header, &counted, "prompt_tokens") + sum(&header, &counted, "completion_tokens"),
            stat["tokens"].as_i64().unwrap(),
            "{filter}"
        );
        // The money columns are the display currency's view of quota (USD: units / 500,000).
        let qi = header.iter().position(|h| h == "quota").unwrap();
        let ci = header.iter().position(|h| h == "cost").unwrap();
        for r in rows.iter().take(50) {
            let q: f64 = r[qi].parse().unwrap();
            let c: f64 = r[ci].parse().unwrap();
            assert!((q / 500_000.0 - c).abs() < 1e-6, "{q} vs {c}");
            assert_eq!(&r[ci + 1], "USD");
        }
        // Ordered as asked, each row once.
        let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "a row repeated across batches");
    }
    // A bad filter is a JSON 400 before any CSV.
    let r = t.api("GET", "/api/log/export?p=2", None).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().is_some());
}

#[tokio::test]
async fn own_export_has_only_own_rows_and_no_channel_columns() {
    let t = TestServer::start().await;
    t.channel(&["m"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    assert_eq!(t.chat(&key, "m", 5, false).await.status, 200);
    let v = t
        .post(
            "/api/users",
            json!({"username": "erin", "password": PASSWORD, "quota": 1_000_000}),
        )
        .await;
    let tok = t.login_token("erin", PASSWORD).await;
    let auth = format!("Bearer {tok}");
    let r = send(
        "POST",
        &t.url("/api/keys"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(json!({"name": "k", "unlimited": true}).to_string().into()),
    )
    .await;
    let ekey = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(t.chat(&ekey, "m", 5, false).await.status, 200);
    t.relays_idle().await;

    let r = send(
        "GET",
        &t.url("/api/log/self/export"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (header, rows) = parse(&r.body);
    let uid = v["id"].as_i64().unwrap().to_string();
    let ui = header.iter().position(|h| h == "user_id").unwrap();
    let ci = header.iter().position(|h| h == "channel_id").unwrap();
    let consume: Vec<_> = rows.iter().filter(|r| &r[3] == "consume").collect();
    assert_eq!(consume.len(), 1);
    assert!(rows.iter().all(|r| r[ui] == uid), "only erin's rows");
    assert!(
        rows.iter().all(|r| r[ci].is_empty()),
        "no channel ids for users"
    );
    // The admin export is admin-only.
    let r = send(
        "GET",
        &t.url("/api/log/export"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 403);
    let _: Value = t.get("/api/log/stat").await;
}

/// The cache and reasoning tokens of each row are in the export (they were only in the log
/// detail), the same numbers `/api/log` gives, for an Anthropic call (cache read and written)
/// and an OpenAI one (cache read, reasoning), and in the user's own export too.
#[tokio::test]
async fn export_has_the_cache_and_reasoning_tokens_of_each_row() {
    let t = TestServer::start().await;
    crate::formats::anthropic_channel(
        &t,
        &["claude-x"],
        json!({"model_mapping": {"claude-x": "claude-x-mock-cache-800-100"}}),
    )
    .await;
    t.channel(
        &["gpt-x"],
        json!({"model_mapping": {"gpt-x": "gpt-x-mock-cache-300-0-mock-reasoning-2"}}),
    )
    .await;
    t.fund(10_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let mut ids = Vec::new();
    for model in ["claude-x", "gpt-x"] {
        let r = t.chat(&key, model, 4, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.request_id());
    }
    t.relays_idle().await;

    let cols = [
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "reasoning_tokens",
    ];
    let listed = t.get("/api/log?type=consume").await;
    for path in [
        "/api/log/export?type=consume",
        "/api/log/self/export?type=consume",
    ] {
        let r = t.api("GET", path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let (header, rows) = parse(&r.body);
        assert_eq!(
            header[header.len() - 4..],
            cols.map(String::from),
            "{path}: the new columns come last"
        );
        let at = |c: &str| header.iter().position(|h| h == c).unwrap();
        let got = |rid: &str| -> Vec<i64> {
            let row = rows
                .iter()
                .find(|r| &r[at("request_id")] == rid)
                .unwrap_or_else(|| panic!("{path}: no row for {rid}"));
            cols.iter().map(|c| row[at(c)].parse().unwrap()).collect()
        };
        // Anthropic: 800 read, 100 written (5 minutes); OpenAI: 300 of the prompt cached, 2
        // of the completion reasoning.
        assert_eq!(got(&ids[0]), [800, 100, 0, 0], "{path}");
        assert_eq!(got(&ids[1]), [300, 0, 0, 2], "{path}");
        // The same figures as the list's rows.
        for item in listed["items"].as_array().unwrap() {
            let rid = item["request_id"].as_str().unwrap();
            let want: Vec<i64> = cols.iter().map(|c| item[*c].as_i64().unwrap()).collect();
            assert_eq!(got(rid), want, "{path}: {rid}");
        }
    }
}
