//! Search, sort and paging on `GET /api/users`, `/api/keys` and `/api/channels`, with the bare
//! array kept for callers that send no parameters.

use crate::common::{TestServer, send};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn names(v: &Value, field: &str) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn users_search_sort_and_page_with_a_total() {
    let t = TestServer::start().await;
    for (name, quota) in [
        ("alice", 10),
        ("bob", 30),
        ("alicia", 20),
        ("carol", 40),
        ("mal_ice", 5),
    ] {
        t.post(
            "/api/users",
            json!({"username": name, "password": PASSWORD, "quota": quota}),
        )
        .await;
    }
    // No parameters: every account as a bare array, as before.
    let all = t.get("/api/users").await;
    assert_eq!(all.as_array().unwrap().len(), 6);

    let v = t.get("/api/users?q=ALI&sort=username").await;
    assert_eq!(v["total"], 2);
    assert_eq!(names(&v, "username"), ["alice", "alicia"]);
    assert_eq!(v["p"], 1);
    assert_eq!(v["page_size"], 20);
    assert!(v["items"][0]["quota_display"].is_object());

    // `_` is literal: only mal_ice, not every name with one character between l and i.
    let v = t.get("/api/users?q=l_i").await;
    assert_eq!(names(&v, "username"), ["mal_ice"]);

    // An id matches exactly.
    let v = t.get("/api/users?q=1").await;
    assert_eq!(names(&v, "username"), ["root"]);

    // Amounts sort largest first by default; pages split the same order.
    let p1 = t.get("/api/users?sort=quota&page_size=2").await;
    let p2 = t.get("/api/users?sort=quota&page_size=2&p=2").await;
    assert_eq!(p1["total"], 6);
    assert_eq!(names(&p1, "username"), ["carol", "bob"]);
    assert_eq!(names(&p2, "username"), ["alicia", "alice"]);
    assert_eq!(p2["p"], 2);
    let asc = t.get("/api/users?sort=quota&order=asc&page_size=1").await;
    assert_eq!(names(&asc, "username"), ["root"]);

    for bad in [
        "/api/users?sort=password_hash",
        "/api/users?order=sideways",
        "/api/users?q=",
        "/api/users?page_size=101",
        "/api/users?p=0",
        "/api/users?status=enabled",
        "/api/users?nope=1",
    ] {
        let r = t.api("GET", bad, None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

#[tokio::test]
async fn keys_page_within_the_callers_own_keys() {
    let t = TestServer::start().await;
    for n in ["prod-a", "prod-b", "test-c"] {
        t.key(json!({"name": n, "unlimited": true})).await;
    }
    let u = t
        .post(
            "/api/users",
            json!({"username": "dave", "password": PASSWORD}),
        )
        .await;
    let tok = t.login_token("dave", PASSWORD).await;
    let auth = format!("Bearer {tok}");
    let r = send(
        "POST",
        &t.url("/api/keys"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(
            json!({"name": "prod-dave", "unlimited": true})
                .to_string()
                .into(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // An admin searches everyone's keys, or one user's.
    let v = t.get("/api/keys?q=prod&sort=name").await;
    assert_eq!(names(&v, "name"), ["prod-a", "prod-b", "prod-dave"]);
    assert_eq!(v["total"], 3);
    let uid = u["id"].as_i64().unwrap();
    let v = t.get(&format!("/api/keys?q=prod&user_id={uid}")).await;
    assert_eq!(names(&v, "name"), ["prod-dave"]);

    // A plain user sees only their own, whatever they search for.
    let r = send(
        "GET",
        &t.url("/api/keys?q=prod"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(names(&v, "name"), ["prod-dave"]);
    assert_eq!(v["total"], 1);
    // …and the bare array without parameters.
    let r = send(
        "GET",
        &t.url("/api/keys"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

/// Issue 12: the console names each key's owner from the key list itself, not from a list of
/// the first 100 accounts. A user's own list names only them.
#[tokio::test]
async fn key_lists_name_each_keys_owner() {
    let t = TestServer::start().await;
    t.key(json!({"name": "root-key", "unlimited": true})).await;
    let mut tokens = Vec::new();
    for name in ["erin", "frank"] {
        let u = t
            .post(
                "/api/users",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        let uid = u["id"].as_i64().unwrap();
        // The admin makes one key for them; they make one themselves.
        t.post(
            "/api/keys",
            json!({"name": format!("{name}-by-admin"), "unlimited": true, "user_id": uid}),
        )
        .await;
        let auth = format!("Bearer {}", t.login_token(name, PASSWORD).await);
        let r = send(
            "POST",
            &t.url("/api/keys"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"name": format!("{name}-own"), "unlimited": true})
                    .to_string()
                    .into(),
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
        tokens.push((name, auth));
    }
    let owners = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["name"].as_str().unwrap().to_string(),
                    k["username"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    // The admin's whole list and a page of a search both name every owner.
    let all = t.get("/api/keys").await;
    assert_eq!(
        owners(&all),
        pairs(&[
            ("root-key", "root"),
            ("erin-by-admin", "erin"),
            ("erin-own", "erin"),
            ("frank-by-admin", "frank"),
            ("frank-own", "frank"),
        ])
    );
    let page = t.get("/api/keys?q=own&sort=name").await;
    assert_eq!(
        owners(&page["items"]),
        pairs(&[("erin-own", "erin"), ("frank-own", "frank")])
    );
    let one = t
        .get(&format!("/api/keys/{}", all[3]["id"].as_i64().unwrap()))
        .await;
    assert_eq!(one["username"], "frank");

    // A rename shows at once: the name is read with the list, not copied into the key.
    let erin = all[1]["user_id"].as_i64().unwrap();
    t.api(
        "PATCH",
        &format!("/api/users/{erin}"),
        Some(json!({"username": "erin2"})),
    )
    .await;
    let page = t.get(&format!("/api/keys?user_id={erin}&sort=name")).await;
    assert_eq!(
        owners(&page["items"]),
        pairs(&[("erin-by-admin", "erin2"), ("erin-own", "erin2")])
    );

    // A user's own list (whole or searched) carries only their own name.
    let (_, frank) = &tokens[1];
    for path in ["/api/keys", "/api/keys?q=-&sort=name"] {
        let r = send("GET", &t.url(path), &[("authorization", frank)], None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let items = if v.is_array() { v } else { v["items"].clone() };
        assert_eq!(
            owners(&items),
            pairs(&[("frank-by-admin", "frank"), ("frank-own", "frank")]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn channels_filter_by_state_and_search_names() {
    let t = TestServer::start().await;
    let a = t.channel(&["m"], json!({"name": "east-1"})).await;
    let b = t
        .channel(&["m"], json!({"name": "west-1", "priority": 5}))
        .await;
    t.channel(&["m"], json!({"name": "east-2", "enabled": false}))
        .await;
    assert_eq!(t.get("/api/channels").await.as_array().unwrap().len(), 3);

    let v = t.get("/api/channels?q=east&sort=name").await;
    assert_eq!(names(&v, "name"), ["east-1", "east-2"]);
    assert!(
        v["items"][0]["api_key"].as_str().unwrap().ends_with('…'),
        "secret masked in pages too"
    );
    let v = t.get("/api/channels?status=disabled").await;
    assert_eq!(names(&v, "name"), ["east-2"]);
    let v = t.get("/api/channels?status=enabled&sort=priority").await;
    assert_eq!(v["items"][0]["id"], b);
    assert_eq!(v["items"][1]["id"], a);
    let r = t.api("GET", "/api/channels?status=broken", None).await;
    assert_eq!(r.status, 400);
}
