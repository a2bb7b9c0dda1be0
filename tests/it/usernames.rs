//! Usernames that cannot pass for another (issue 11, item 15): ASCII only, no case variants of
//! an existing name; old names still sign in; a failed sign-in names the account only when it
//! exists.

use crate::common::{TestServer, send};
use crate::process;
use serde_json::json;
use std::time::Duration;

const PASSWORD: &str = "a-long-enough-password";

async fn login_status(base: &str, username: &str, password: &str) -> u16 {
    send(
        "POST",
        &format!("{base}/api/auth/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"username": username, "password": password})
                .to_string()
                .into(),
        ),
    )
    .await
    .status
}

fn manage_rows(t: &TestServer) -> i64 {
    t.db()
        .query_row("SELECT COUNT(*) FROM logs WHERE type = 3", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn new_names_and_renames_are_ascii_and_unlike_existing_ones() {
    let t = TestServer::start().await;
    let before = manage_rows(&t);
    for name in [
        "r\u{043e}\u{043e}t", // Cyrillic о
        "\u{0430}dmin",       // Cyrillic а
        "ro\u{200b}ot",       // zero-width space
        "ｒｏｏｔ",           // full-width
        "jürgen",
        "bob\u{0301}", // combining accent
        "with space",
        "",
        &"a".repeat(65),
    ] {
        let r = t
            .api(
                "POST",
                "/api/users",
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 400, "{name:?}: {}", r.text());
        assert!(r.text().contains("ASCII letters"), "{}", r.text());
    }
    // Letter case alone does not make a new name.
    for name in ["Root", "ROOT", "rOOt"] {
        let r = t
            .api(
                "POST",
                "/api/users",
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 409, "{name:?}: {}", r.text());
        assert!(r.text().contains("only in letter case"), "{}", r.text());
    }
    let v = t
        .post(
            "/api/users",
            json!({"username": "Bob.o_k-1@example.com", "password": PASSWORD}),
        )
        .await;
    let path = format!("/api/users/{}", v["id"]);
    // Renames follow the same rules; a change of one's own letter case is fine.
    let r = t
        .api(
            "PATCH",
            &path,
            Some(json!({"username": "r\u{043e}\u{043e}t"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = t
        .api("PATCH", &path, Some(json!({"username": "RooT"})))
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = t
        .patch(&path, json!({"username": "bob.o_k-1@example.com"}))
        .await;
    assert_eq!(v["username"], "bob.o_k-1@example.com");
    // Nothing half-written: one manage row for the create and one for the rename, none for
    // the refusals.
    assert_eq!(manage_rows(&t) - before, 2);
    assert_eq!(t.get("/api/users").await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn existing_names_outside_the_rules_still_sign_in() {
    let t = TestServer::start().await;
    // A row from before the rule, written as an older version would have.
    let hash = sluice::auth::hash_password(PASSWORD).unwrap();
    t.db()
        .execute(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES ('jürgen', ?1, 'user', 0)",
            [&hash],
        )
        .unwrap();
    assert_eq!(login_status(&t.base, "jürgen", PASSWORD).await, 200);
    // An admin can still change the account without renaming it …
    let id: i64 = t
        .db()
        .query_row("SELECT id FROM users WHERE username = 'jürgen'", [], |r| {
            r.get(0)
        })
        .unwrap();
    t.patch(&format!("/api/users/{id}"), json!({"group": "vip"}))
        .await;
    // … or rename it into the rules.
    t.patch(&format!("/api/users/{id}"), json!({"username": "juergen"}))
        .await;
    assert_eq!(login_status(&t.base, "juergen", PASSWORD).await, 200);
}

/// Waits (on the output's condition variable, bounded by 10 s) for `needle` in the server's
/// captured output and returns the output.
fn wait_for_output(p: &process::Proc, needle: &str) -> String {
    p.wait_output(needle, Duration::from_secs(10));
    p.output()
}

#[tokio::test]
async fn failed_sign_ins_name_only_accounts_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = process::spawn(dir.path());
    let (token, _) = process::admin_token(&p.base).await;
    process::api(
        &p.base,
        &token,
        "POST",
        "/api/users",
        json!({"username": "alice", "password": PASSWORD}),
    )
    .await;
    // A password typed into the name field, a look-alike of root, and alice's wrong password.
    let typed = "Tr0ub4dor&3-typed-as-a-name";
    assert_eq!(login_status(&p.base, typed, "x").await, 401);
    assert_eq!(login_status(&p.base, "r\u{043e}\u{043e}t", "x").await, 401);
    assert_eq!(login_status(&p.base, "alice", "wrong-password").await, 401);
    let out = wait_for_output(&p, "failed sign-in for \"alice\"");
    let unknown = out
        .matches("failed sign-in for an unknown username")
        .count();
    assert_eq!(unknown, 2, "{out}");
    assert!(
        !out.contains(typed),
        "the typed name reached the log: {out}"
    );
    assert!(!out.contains("r\u{043e}\u{043e}t"), "{out}");
    assert!(!out.contains("wrong-password"), "{out}");
    p.signal("-TERM");
    // Waited on with a deadline (killed and failed past it).
    assert_eq!(p.wait(), 0, "{}", p.output());
}
