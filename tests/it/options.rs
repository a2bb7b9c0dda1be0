//! `GET /api/option` carries what a generated settings form needs; `PUT /api/option` refuses
//! a form with every bad field named, and stores nothing.

use crate::common::TestServer;
use serde_json::{Value, json};

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[tokio::test]
async fn option_list_has_form_metadata_and_keeps_its_old_fields() {
    let t = TestServer::start().await;
    t.put("/api/option", json!({"smtp.password": "hunter22"}))
        .await;
    let list = t.get("/api/option").await;
    for o in list.as_array().unwrap() {
        for f in [
            "name",
            "value",
            "default",
            "description",
            "secret",
            "module",
            "type",
        ] {
            assert!(o.get(f).is_some(), "{} lacks {f}", o["name"]);
        }
        assert!(
            o["name"]
                .as_str()
                .unwrap()
                .starts_with(o["module"].as_str().unwrap())
        );
    }
    let r = find(&list, "relay.retries");
    assert_eq!(
        (&r["type"], &r["min"], &r["max"], &r["unit"]),
        (&json!("int"), &json!(0.0), &json!(10.0), &Value::Null)
    );
    let r = find(&list, "relay.connect_timeout_ms");
    assert_eq!(r["unit"], "ms");
    let r = find(&list, "display.currency");
    assert_eq!(r["type"], "enum");
    assert_eq!(r["enum"], json!(["USD", "CNY", "TOKENS", "CUSTOM"]));
    let r = find(&list, "smtp.password");
    assert_eq!((&r["type"], &r["secret"]), (&json!("secret"), &json!(true)));
    assert_eq!(r["value"], "********", "secrets stay masked");
    let r = find(&list, "ratelimit.group_rpm");
    assert_eq!(
        (&r["type"], &r["item_type"]),
        (&json!("map"), &json!("int"))
    );
    let r = find(&list, "channel.disable_statuses");
    assert_eq!(
        (&r["type"], &r["item_type"], &r["min"], &r["max"]),
        (&json!("list"), &json!("int"), &json!(400.0), &json!(499.0))
    );
    let r = find(&list, "display.exchange_rate");
    assert_eq!(r["min_exclusive"], true);
}

#[tokio::test]
async fn a_bad_form_names_every_bad_field_and_stores_nothing() {
    let t = TestServer::start().await;
    let before = t.get("/api/option/export").await;
    let r = t
        .api(
            "PUT",
            "/api/option",
            Some(json!({
                "relay.retries": 99,
                "log.retention_days": "forever",
                "backup.keep": 3,
                "display.currency": "EUR",
            })),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = &r.json()["error"];
    assert_eq!(e["code"], "invalid_request");
    let fields = e["fields"].as_object().unwrap();
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["display.currency", "log.retention_days", "relay.retries"]
    );
    assert!(
        fields["relay.retries"]
            .as_str()
            .unwrap()
            .contains("0 to 10"),
        "{fields:?}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("3 options are not valid")
    );
    // backup.keep was fine but nothing is stored while anything is refused.
    assert_eq!(t.get("/api/option/export").await, before);

    // Other errors keep the plain shape (no `fields`).
    let r = t.api("PUT", "/api/option", Some(json!([1]))).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].get("fields").is_none());
}
