//! What hands out the server's secrets (issue 11, item 11): database downloads are root's
//! alone, a channel's stored secret never follows its base URL to another server, and the
//! SMTP password never follows smtp.host or smtp.port to another mail server.

use crate::common::{TestServer, with_token};
use crate::receivers::SmtpCapture;
use serde_json::json;
use sluice::mock::MockUpstream;
use tokio::net::TcpListener;

const PASSWORD: &str = "a-long-enough-password";

/// An admin (not root) and its token.
async fn admin(t: &TestServer) -> String {
    t.post(
        "/api/users",
        json!({"username": "ada", "password": PASSWORD, "role": "admin"}),
    )
    .await;
    t.login_token("ada", PASSWORD).await
}

fn manage_contents(t: &TestServer) -> Vec<String> {
    let db = t.db();
    let mut st = db
        .prepare("SELECT content FROM logs WHERE type = 3 ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn only_root_downloads_the_database_admins_may_list_and_make_backups() {
    let t = TestServer::start().await;
    t.channel(&["m"], json!({})).await;
    let ada = admin(&t).await;

    // An admin may make a backup and see the list …
    let r = with_token(&t, &ada, "POST", "/api/backups", None).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let name = r.json()["name"].as_str().unwrap().to_string();
    let r = with_token(&t, &ada, "GET", "/api/backups", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["name"], name);

    // … but not take the database away: it holds the channel secrets in clear.
    for path in [
        format!("/api/backups/{name}"),
        "/api/backup/hot-copy".to_string(),
    ] {
        let r = with_token(&t, &ada, "GET", &path, None).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "forbidden");
        assert!(r.text().contains("root"), "{}", r.text());
        assert!(!r.text().contains("sk-upstream-secret-canary"));
    }
    assert!(
        !manage_contents(&t)
            .iter()
            .any(|c| c.contains("downloaded") || c.contains("hot copy")),
        "a refused download left a row"
    );

    // Root may.
    for path in [
        format!("/api/backups/{name}"),
        "/api/backup/hot-copy".to_string(),
    ] {
        let r = t.api("GET", &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.body.starts_with(b"SQLite format 3\0"), "{path}");
    }
}

#[tokio::test]
async fn moving_a_channel_to_another_server_needs_its_secret_again() {
    let t = TestServer::start().await;
    let id = t.channel(&["m"], json!({"test_model": "m"})).await;
    let path = format!("/api/channels/{id}");
    let ada = admin(&t).await;
    // The server an admin would like the secret sent to.
    let elsewhere = MockUpstream::start(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let home = t.mock.base_url();
    let port = t.mock.addr().port();

    for url in [
        elsewhere.base_url(),                   // another port
        home.replace("127.0.0.1", "localhost"), // another host name
        home.replace("http://", "https://"),    // another scheme
        format!("http://127.0.0.2:{port}/v1"),  // another address
    ] {
        let r = with_token(&t, &ada, "PATCH", &path, Some(json!({"base_url": url}))).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert!(r.text().contains("send api_key"), "{}", r.text());
    }
    assert_eq!(t.get(&path).await["base_url"], home);
    let r = with_token(&t, &ada, "POST", &format!("{path}/test"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(elsewhere.calls(), 0, "the secret went to the other server");
    assert_eq!(
        t.mock.last_request().unwrap().authorization.as_deref(),
        Some("Bearer sk-upstream-secret-canary"),
        "the test went to the channel's own server"
    );

    // The same server under another path, or its scheme in capitals: no secret needed.
    let r = with_token(
        &t,
        &ada,
        "PATCH",
        &path,
        Some(json!({"base_url": format!("{home}/x")})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = with_token(
        &t,
        &ada,
        "PATCH",
        &path,
        Some(json!({"base_url": home.replace("http://", "HTTP://")})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    t.patch(&path, json!({"base_url": home})).await;

    // With the secret given again, the move is the admin's to make.
    let r = with_token(
        &t,
        &ada,
        "PATCH",
        &path,
        Some(json!({"base_url": elsewhere.base_url(), "api_key": "sk-for-elsewhere"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = with_token(&t, &ada, "POST", &format!("{path}/test"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(elsewhere.calls(), 1);
    assert_eq!(
        elsewhere.last_request().unwrap().authorization.as_deref(),
        Some("Bearer sk-for-elsewhere")
    );
}

#[tokio::test]
async fn moving_the_mail_server_needs_the_smtp_password_again() {
    // The mail server the password was given for, and one an admin would like it sent to.
    let home = SmtpCapture::start().await;
    let elsewhere = SmtpCapture::start().await;
    let t = TestServer::start_with_options(json!({
        "smtp.host": "127.0.0.1",
        "smtp.port": home.port,
        "smtp.from": "sluice <noreply@example.com>",
        "smtp.password": "smtp-canary-secret",
        "smtp.plaintext_loopback": true,
    }))
    .await;
    t.put(
        "/api/me/notify",
        json!({"kind": "email", "email": "root@example.com"}),
    )
    .await;
    let ada = admin(&t).await;
    let smtp = |t: &TestServer| {
        let o = t.state.catalog.options();
        (o.smtp.host.clone(), o.smtp.port, o.smtp.password.clone())
    };
    let before = smtp(&t);

    for change in [
        json!({"smtp.port": elsewhere.port}), // another port
        json!({"smtp.host": "localhost"}),    // another host name
        json!({"smtp.host": "127.0.0.2"}),    // another address
        json!({"smtp.port": elsewhere.port, "smtp.password": "********"}), // the mask is no secret
    ] {
        let r = with_token(&t, &ada, "PUT", "/api/option", Some(change.clone())).await;
        assert_eq!(r.status, 400, "{change}: {}", r.text());
        assert!(r.text().contains("send smtp.password"), "{}", r.text());
        assert!(!r.text().contains("smtp-canary-secret"));
    }
    assert_eq!(smtp(&t), before, "a refused move changed the options");
    // Mail still goes to the server the password was given for.
    let r = t.api("POST", "/api/me/notify/test", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    assert_eq!((home.mails().len(), elsewhere.mails().len()), (1, 0));

    // Other mail settings, and the same host in capitals, need no password.
    for change in [
        json!({"smtp.from": "gateway <gw@example.com>"}),
        json!({"smtp.host": "127.0.0.1", "smtp.port": home.port}),
    ] {
        let r = with_token(&t, &ada, "PUT", "/api/option", Some(change.clone())).await;
        assert_eq!(r.status, 200, "{change}: {}", r.text());
    }
    // Clearing the host (mail off) sends nothing anywhere: no password needed. Naming a server
    // again afterwards does (else clearing would be the way round the rule).
    let r = with_token(
        &t,
        &ada,
        "PUT",
        "/api/option",
        Some(json!({"smtp.host": ""})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = with_token(
        &t,
        &ada,
        "PUT",
        "/api/option",
        Some(json!({"smtp.host": "127.0.0.1", "smtp.port": elsewhere.port})),
    )
    .await;
    assert_eq!(r.status, 400, "a server named after a clear: {}", r.text());

    // With the password given again, the move is the admin's to make.
    let r = with_token(
        &t,
        &ada,
        "PUT",
        "/api/option",
        Some(
            json!({"smtp.host": "127.0.0.1", "smtp.port": elsewhere.port,
                    "smtp.password": "smtp-other-secret"}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = t.api("POST", "/api/me/notify/test", None).await;
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    assert_eq!((home.mails().len(), elsewhere.mails().len()), (1, 1));
}
