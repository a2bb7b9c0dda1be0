//! The manage log: every admin change writes a row with its request id.

use super::*;

#[tokio::test]
async fn admin_changes_write_manage_log_rows() {
    let t = TestServer::start().await;
    let before = manage_rows(&t).len();

    let r = t
        .api(
            "POST",
            "/api/users",
            Some(json!({"username": "dora", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201);
    let uid = r.json()["id"].as_i64().unwrap();
    let rid = r.request_id();
    let r = t
        .api(
            "PATCH",
            &format!("/api/users/{uid}"),
            Some(json!({"quota": 42})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .api(
            "POST",
            "/api/channels",
            Some(json!({"name": "logged", "base_url": "https://example.com/v1", "api_key": CANARY, "models": ["m"]})),
        )
        .await;
    assert_eq!(r.status, 201);
    let rid_channel = r.request_id();
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({"pricing.model_ratio": {"m": 2}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let rid_options = r.request_id();
    let (kid, _) = t.key(json!({"quota": 1})).await;
    let r = t.api("DELETE", &format!("/api/keys/{kid}"), None).await;
    assert_eq!(r.status, 204);
    let rid_key = r.request_id();
    let r = t.api("DELETE", &format!("/api/users/{uid}"), None).await;
    assert_eq!(r.status, 204);
    let rid_delete = r.request_id();

    let rows = manage_rows(&t);
    assert_eq!(rows.len(), before + 7, "{rows:#?}");
    // Every row names the admin who acted.
    for (_, user_id, username, content) in &rows[before..] {
        assert_eq!(*user_id, Some(1), "{content}");
        assert_eq!(username.as_deref(), Some("root"), "{content}");
    }
    // Rows are found by the request id of the call that made them (see also the ignored
    // `user_patch_manage_row_carries_the_request_id`).
    let row = |rid: &str| {
        rows.iter()
            .find(|r| r.0 == rid)
            .unwrap_or_else(|| panic!("no manage row for request {rid}: {rows:#?}"))
            .3
            .clone()
    };
    assert!(row(&rid).contains("dora"), "{}", row(&rid));
    assert!(
        row(&rid_channel).contains("logged"),
        "{}",
        row(&rid_channel)
    );
    assert!(
        row(&rid_options).contains("model_ratio"),
        "{}",
        row(&rid_options)
    );
    assert!(row(&rid_key).contains("deleted key"), "{}", row(&rid_key));
    assert!(
        row(&rid_delete).contains("deleted user \"dora\""),
        "{}",
        row(&rid_delete)
    );
    let patched: Vec<_> = rows
        .iter()
        .filter(|r| r.3.contains("updated user \"dora\""))
        .collect();
    assert_eq!(patched.len(), 1, "{rows:#?}");
    assert!(patched[0].3.contains("42"), "{:?}", patched[0]);
    // The type is stored as the number 3.
    let t3: i64 = t
        .db()
        .query_row("SELECT type FROM logs WHERE request_id = ?1", [&rid], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(t3, 3);

    // A refused change writes nothing.
    let n = manage_rows(&t).len();
    assert_error(
        &t.api("PATCH", "/api/users/1", Some(json!({"quota": -1})))
            .await,
        400,
        "invalid_request",
    );
    assert_eq!(manage_rows(&t).len(), n);
}

// Regression: the row was once built on the writer thread, outside the request's task-local
// request id, and carried "SYSTEM".
#[tokio::test]
async fn user_patch_manage_row_carries_the_request_id() {
    let t = TestServer::start().await;
    let (uid, _) = new_user(&t, "erin", "user").await;
    let r = t
        .api(
            "PATCH",
            &format!("/api/users/{uid}"),
            Some(json!({"quota": 42})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The manage row, and the top-up row carrying the balance difference.
    let mut rows = t.log_rows(&r.request_id());
    rows.sort();
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        vec![(1, 42), (3, 0)],
        "rows under the PATCH's request id {}: {:#?}",
        r.request_id(),
        manage_rows(&t)
    );
    assert!(
        manage_rows(&t).iter().all(|r| r.0 != "SYSTEM"),
        "{:#?}",
        manage_rows(&t)
    );
}
