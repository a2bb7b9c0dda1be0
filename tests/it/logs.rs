//! Log search, totals, usage series, retention, reconciliation and the anomaly report, over
//! real HTTP and a real SQLite file.

use crate::common::{Resp, TestServer, send};
use serde_json::{Value, json};
use sluice::store::synthetic::{self, Spec};

const PASSWORD: &str = "correct horse battery staple";

fn ok(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Fills the test server's database with synthetic traffic, as `sluice gen-logs` does.
async fn generate(t: &TestServer, spec: Spec) {
    let store = t.state.store.clone();
    tokio::task::spawn_blocking(move || synthetic::generate(&store, &spec, |_| {}))
        .await
        .unwrap()
        .unwrap();
    t.state.catalog.reload().await.unwrap();
}

/// A plain user with a personal access token.
async fn user(t: &TestServer, name: &str) -> (i64, String) {
    let v = t
        .post(
            "/api/users",
            json!({"username": name, "password": PASSWORD, "quota": 1_000_000}),
        )
        .await;
    let tok = t.login_token(name, PASSWORD).await;
    (v["id"].as_i64().unwrap(), tok)
}

async fn get_as(t: &TestServer, token: &str, path: &str) -> Resp {
    let auth = format!("Bearer {token}");
    send("GET", &t.url(path), &[("authorization", &auth)], None).await
}

/// Direct SQL over the rows: (requests, quota, prompt, completion) of consume rows in [s, e).
fn sql_totals(t: &TestServer, filter: &str, s: i64, e: i64) -> (i64, i64, i64, i64) {
    t.db()
        .query_row(
            &format!(
                "SELECT COUNT(*), COALESCE(SUM(quota),0), COALESCE(SUM(prompt_tokens),0),
                        COALESCE(SUM(completion_tokens),0)
                   FROM logs WHERE type = 2 AND created_at >= ?1 AND created_at < ?2 {filter}"
            ),
            [s, e],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn search_filters_and_hides_channels_from_users() {
    let t = TestServer::start().await;
    let ch = t
        .channel(&["gpt-4o-mini", "other-model", "mock-500"], json!({}))
        .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"name": "alpha", "unlimited": true})).await;
    let a = t.chat(&key, "gpt-4o-mini", 5, false).await;
    assert_eq!(a.status, 200);
    let b = t.chat(&key, "other-model", 5, true).await;
    assert_eq!(b.status, 200);
    let c = t.chat(&key, "mock-500", 5, false).await;
    assert_eq!(c.status, 502, "{}", c.text());
    t.relays_idle().await;

    let all = t.get("/api/log?type=consume,error").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    assert_eq!(items[0]["request_id"], c.request_id(), "newest first");
    assert_eq!(items[0]["channel_id"], ch);

    let by = |q: &str| {
        let t = &t;
        let q = q.to_string();
        async move {
            let v = t.get(&format!("/api/log?{q}")).await;
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["request_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by("type=error").await, vec![c.request_id()]);
    assert_eq!(by("model_name=gpt-4o-mini").await, vec![a.request_id()]);
    assert_eq!(
        by(&format!("request_id={}", b.request_id())).await,
        vec![b.request_id()]
    );
    assert_eq!(by("status=502").await, vec![c.request_id()]);
    assert_eq!(
        by("token_name=alpha&type=consume&order=asc").await,
        vec![a.request_id(), b.request_id()]
    );
    assert_eq!(
        by("username=root&type=2&model=other-model").await,
        vec![b.request_id()]
    );
    assert_eq!(by(&format!("channel={ch}&type=consume")).await.len(), 2);
    assert_eq!(by("group=default&type=5").await, vec![c.request_id()]);
    assert!(by("username=nobody").await.is_empty());
    assert!(
        by("model_name=x'%20OR%20'1'='1").await.is_empty(),
        "no injection"
    );
    let now = sluice::util::now_secs();
    assert!(
        by(&format!("start_timestamp={}", now + 10))
            .await
            .is_empty()
    );
    assert_eq!(
        by(&format!("end_timestamp={}&type=consume", now + 10))
            .await
            .len(),
        2
    );

    // An inverted range is empty, not an error.
    assert!(by("start_timestamp=10&end_timestamp=5").await.is_empty());
    // Bad parameters: a JSON error naming the problem, never a 500.
    for (q, want) in [
        ("sort=created_at;DROP%20TABLE%20logs", "sort must be one of"),
        ("order=sideways", "asc or desc"),
        ("page_size=1000", "page_size"),
        ("type=bogus", "unknown log type"),
        ("cursor=abc", "cursor"),
        ("nonsense=1", "bad query parameter"),
    ] {
        let r = t.api("GET", &format!("/api/log?{q}"), None).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.text().contains(want), "{q}: {}", r.text());
    }

    // A user sees their own rows only, without channel details, and cannot ask for others'.
    let (_, tok) = user(&t, "uma").await;
    let mine = ok(&get_as(&t, &tok, "/api/log/self").await);
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["user_id"] != 1),
        "{mine}"
    );
    let own_rows = mine["items"].as_array().unwrap();
    assert!(own_rows.iter().all(|r| r.get("channel_id").is_none()));
    let r = get_as(&t, &tok, "/api/log/self?channel=1").await;
    assert_eq!(r.status, 400);
    assert_eq!(get_as(&t, &tok, "/api/log").await.status, 403);
    assert_eq!(get_as(&t, &tok, "/api/log/stat").await.status, 403);
}

#[tokio::test]
async fn cursor_pages_are_stable_while_rows_arrive() {
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(t.chat(&key, "gpt-4o-mini", 2, false).await.request_id());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/log?type=consume&page_size=3&cursor={c}"),
            None => "/api/log?type=consume&page_size=3".to_string(),
        };
        let v = t.get(&q).await;
        for r in v["items"].as_array().unwrap() {
            seen.push(r["request_id"].as_str().unwrap().to_string());
        }
        // A new row between pages does not shift what the next page holds.
        t.chat(&key, "gpt-4o-mini", 2, false).await;
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // Sorting by another allowed column pages through every row once as well.
    let total = t.get("/api/log?type=consume&page_size=100").await["items"]
        .as_array()
        .unwrap()
        .len();
    let mut n = 0;
    let mut cursor = String::new();
    loop {
        let v = t
            .get(&format!(
                "/api/log?type=consume&sort=quota&order=asc&page_size=4{cursor}"
            ))
            .await;
        let items = v["items"].as_array().unwrap();
        n += items.len();
        let w: Vec<i64> = items.iter().map(|r| r["quota"].as_i64().unwrap()).collect();
        assert!(w.windows(2).all(|p| p[0] <= p[1]), "{w:?}");
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(n, total);
}

#[tokio::test]
async fn stat_respects_type_and_range_and_matches_the_rows() {
    let t = TestServer::start().await;
    generate(
        &t,
        Spec {
            rows: 6_000,
            days: 3,
            users: 4,
            keys_per_user: 2,
            seed: 7,
        },
    )
    .await;
    let now = sluice::util::now_secs();
    // Ranges on and off the hour, short and long, and the whole history.
    let ranges = [
        (now - 3 * 86_400 - 100, now + 1),
        (now - 86_400 + 123, now - 3_600 * 5 - 17),
        (now - 7_200 + 1, now - 7_100),
        (now - now % 3_600 - 86_400, now - now % 3_600),
        (now - 40_000, now - 39_999),
        (
            now - now % 86_400 - 2 * 86_400 + 1,
            now - now % 86_400 + 7_201,
        ),
        (now - now % 86_400 - 86_400, now + 3_600),
    ];
    let models = ["gpt-4o", "gpt-4o-mini", "deepseek-chat"];
    for (s, e) in ranges {
        let v = t
            .get(&format!(
                "/api/log/stat?start_timestamp={s}&end_timestamp={e}"
            ))
            .await;
        let want = sql_totals(&t, "", s, e);
        assert_eq!(
            (
                v["requests"].as_i64().unwrap(),
                v["quota"].as_i64().unwrap(),
                v["prompt_tokens"].as_i64().unwrap(),
                v["completion_tokens"].as_i64().unwrap()
            ),
            want,
            "range {s}..{e}: {v}"
        );
        for m in models {
            let v = t
                .get(&format!(
                    "/api/log/stat?start_timestamp={s}&end_timestamp={e}&model_name={m}"
                ))
                .await;
            let want = sql_totals(&t, &format!("AND model = '{m}'"), s, e);
            assert_eq!(v["quota"].as_i64().unwrap(), want.1, "{m} {s}..{e}");
            assert_eq!(v["requests"].as_i64().unwrap(), want.0, "{m} {s}..{e}");
        }
    }
    // The type is respected: errors counted as errors, and they carry no quota.
    let errors: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type = 5", [], |r| r.get(0))
        .unwrap();
    assert!(errors > 0);
    let v = t.get("/api/log/stat?type=error").await;
    assert_eq!(
        (
            v["requests"].as_i64().unwrap(),
            v["quota"].as_i64().unwrap()
        ),
        (errors, 0)
    );
    // Group and key filters agree with the rows too.
    let v = t.get("/api/log/stat?group=vip").await;
    assert_eq!(
        v["quota"].as_i64().unwrap(),
        sql_totals(&t, "AND user_group = 'vip'", 0, now + 10).1
    );
    // The synthetic rows are all in the past minute's window only if recent: RPM/TPM counts
    // the last 60 s of the range.
    let v = t
        .get(&format!("/api/log/stat?end_timestamp={}", now - 3_600))
        .await;
    let minute = sql_totals(&t, "", now - 3_660, now - 3_600);
    assert_eq!(v["rpm"].as_i64().unwrap(), minute.0);
    assert_eq!(v["tpm"].as_i64().unwrap(), minute.2 + minute.3);
}

#[tokio::test]
async fn usage_series_sum_to_the_totals_and_survive_retention() {
    let t = TestServer::start().await;
    generate(
        &t,
        Spec {
            rows: 4_000,
            days: 10,
            users: 3,
            keys_per_user: 2,
            seed: 3,
        },
    )
    .await;
    let now = sluice::util::now_secs();
    let start = now - 11 * 86_400;
    let sum = |v: &Value, field: &str| -> i64 {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[field].as_i64().unwrap())
            .sum()
    };
    let days = t.get(&format!("/api/usage?bucket=day&start={start}")).await;
    let hours = t
        .get(&format!("/api/usage?bucket=hour&start={start}&by=model"))
        .await;
    let all = sql_totals(&t, "", 0, now + 10);
    assert_eq!(sum(&days, "quota"), all.1);
    assert_eq!(sum(&hours, "quota"), all.1);
    let rows_before: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type IN (2, 5)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(sum(&days, "requests"), rows_before);
    assert!(sum(&days, "errors") > 0);
    assert!(hours["points"][0]["of"].is_string());

    // Retention at 2 days: old rows go, in batches, their charges kept in the purged totals.
    // Exactly the consume, system and error rows before the cutoff go, in several batches,
    // and nothing else: not a row newer, not a top-up or manage row.
    let count = |sql: &str| -> i64 { t.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    let cutoff = now - 2 * 86_400;
    let purgeable = format!("type IN (2, 4, 5) AND created_at < {cutoff}");
    let old = count(&format!("SELECT COUNT(*) FROM logs WHERE {purgeable}"));
    let newer = count(&format!(
        "SELECT COUNT(*) FROM logs WHERE created_at >= {cutoff}"
    ));
    let kept_kinds = count("SELECT COUNT(*) FROM logs WHERE type IN (1, 3)");
    let total = count("SELECT COUNT(*) FROM logs");
    assert!(old > 4 * 500 && newer > 0, "{old} old, {newer} newer");
    let deleted = sluice::retention::purge_in_batches(&t.state.store, cutoff, 500)
        .await
        .unwrap();
    assert_eq!(deleted as i64, old);
    assert_eq!(count("SELECT COUNT(*) FROM logs"), total - old);
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM logs WHERE {purgeable}")),
        0
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM logs WHERE created_at >= {cutoff}"
        )),
        newer
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM logs WHERE type IN (1, 3)"),
        kept_kinds
    );
    // A second pass over the same cutoff finds nothing.
    let again = sluice::retention::purge_in_batches(&t.state.store, cutoff, 500)
        .await
        .unwrap();
    assert_eq!(again, 0);
    // The scheduled pass, from the option: its cutoff is a moment later, so only rows within
    // that moment of ours may go; none a minute newer.
    let minute_newer = format!("type IN (2, 4, 5) AND created_at >= {}", cutoff + 60);
    let young = count(&format!("SELECT COUNT(*) FROM logs WHERE {minute_newer}"));
    t.put("/api/option", json!({"log.retention_days": 2})).await;
    sluice::retention::run_once(&t.state.store, t.state.catalog.options().log.retention_days)
        .await
        .unwrap();
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM logs WHERE {minute_newer}")),
        young
    );
    // Charts keep the history, the ledger still reconciles.
    let after = t.get(&format!("/api/usage?bucket=day&start={start}")).await;
    assert_eq!(after, days);
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
    // Top-up and manage rows are never deleted.
    let topups: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type = 1", [], |r| r.get(0))
        .unwrap();
    assert!(topups >= 3);

    // Manual clean-up of everything before now: counted, logged, still reconciled.
    let v = t
        .api("DELETE", &format!("/api/log?before={}", now + 1), None)
        .await;
    let v = ok(&v);
    assert!(v["deleted"].as_i64().unwrap() > 0);
    let left: i64 = t
        .db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type IN (2, 5)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(t.get("/api/reconcile").await["clean"], true);
    let manage: i64 = t
        .db()
        .query_row(
            "SELECT COUNT(*) FROM logs WHERE type = 3 AND content LIKE 'deleted % log rows%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(manage, 1);
    let r = t.api("DELETE", "/api/log", None).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("before"), "{}", r.text());
}

#[tokio::test]
async fn reconcile_finds_a_tampered_balance() {
    let t = TestServer::start().await;
    t.channel(&["gpt-4o-mini"], json!({})).await;
    t.fund(100_000).await;
    let (kid, key) = t.key(json!({"quota": 50_000})).await;
    for stream in [false, true, false] {
        assert_eq!(t.chat(&key, "gpt-4o-mini", 5, stream).await.status, 200);
    }
    t.relays_idle().await;
    t.patch(&format!("/api/keys/{kid}"), json!({"quota": 70_000}))
        .await;
    t.fund(90_000).await;
    let v = t.get("/api/reconcile").await;
    assert_eq!(v["clean"], true, "{v}");
    assert!(v["users_checked"].as_i64().unwrap() >= 1);

    // Someone edits the file behind sluice's back.
    t.db()
        .execute(
            "UPDATE users SET used_quota = used_quota + 5 WHERE id = 1",
            [],
        )
        .unwrap();
    t.db()
        .execute(
            &format!("UPDATE api_keys SET remain_quota = remain_quota - 3 WHERE id = {kid}"),
            [],
        )
        .unwrap();
    let v = t.get("/api/reconcile").await;
    assert_eq!(v["clean"], false);
    let d = v["differences"].as_array().unwrap();
    assert!(
        d.iter().any(|x| x["account"] == "user"
            && x["id"] == 1
            && x["field"] == "used_quota"
            && x["stored"].as_i64().unwrap() - x["from_logs"].as_i64().unwrap() == 5),
        "{v}"
    );
    assert!(
        d.iter()
            .any(|x| x["account"] == "key" && x["id"] == kid && x["field"] == "balance"),
        "{v}"
    );
}

#[tokio::test]
async fn anomalies_flag_spikes_token_divergence_and_failing_channels() {
    let t = TestServer::start_with_options(json!({
        "anomaly.min_spend": 1,
        "anomaly.min_requests": 1,
    }))
    .await;
    let bad = t.channel(&["mock-500"], json!({})).await;
    t.channel(&["gpt-4o-mini", "model-mock-inflate-3"], json!({}))
        .await;
    t.fund(1_000_000).await;
    let (_, key) = t.key(json!({"unlimited": true})).await;
    // The first call is always sampled by the token audit.
    let r = t.chat(&key, "model-mock-inflate-3", 5, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(t.chat(&key, "mock-500", 5, false).await.status, 502);
    assert_eq!(t.chat(&key, "gpt-4o-mini", 5, false).await.status, 200);
    t.relays_idle().await;
    let v = t.get("/api/anomalies").await;
    // Root spent in the last hour with no history at all: far above the usual (zero).
    assert!(
        v["spenders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["account"] == "user" && s["id"] == 1),
        "{v}"
    );
    let d = &v["token_divergence"][0];
    assert_eq!(d["model"], "model-mock-inflate-3", "{v}");
    assert!(
        (d["divergence"].as_f64().unwrap() - 2.0).abs() < 0.01,
        "{v}"
    );
    assert!(
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["channel_id"] == bad),
        "{v}"
    );
    // With the default thresholds nothing this small is flagged.
    t.put(
        "/api/option",
        json!({"anomaly.min_spend": 50_000, "anomaly.min_requests": 20}),
    )
    .await;
    let v = t.get("/api/anomalies").await;
    assert!(v["spenders"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["token_divergence"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["channels"].as_array().unwrap().is_empty(), "{v}");
}

/// The real binary: `sluice gen-logs` fills a database that `sluice reconcile` finds clean;
/// after a hand edit reconcile names the account and exits 1.
#[test]
fn gen_logs_and_reconcile_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_sluice");
    let data = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        crate::child::output_within(
            std::process::Command::new(bin)
                .args(args)
                .args(["--data-dir", data])
                .env("SLUICE_ROOT_PASSWORD", "a-root-password-for-tests")
                .env("SLUICE_LOG_FILES", "false"),
            None,
            crate::child::EXIT_WITHIN,
        )
    };
    let out = run(&["gen-logs", "3000", "--days", "2", "--users", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = rusqlite::Connection::open(dir.path().join("sluice.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM logs WHERE type IN (2, 5)", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 3000);
    let out = run(&["reconcile"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("clean"), "{text}");
    db.execute("UPDATE users SET quota = quota + 1 WHERE id = 2", [])
        .unwrap();
    let out = run(&["reconcile", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["differences"][0]["id"], 2, "{v}");
    assert_eq!(v["differences"][0]["field"], "balance", "{v}");
}
