//! The OpenAPI document served at `GET /api/openapi.json` against the route table.

use crate::common::{TestServer, send};
use serde_json::Value;
use sluice::server::router::{Access, ROUTES};

/// The document as the running server serves it.
async fn served_doc(t: &TestServer) -> Value {
    let r = send("GET", &t.url("/api/openapi.json"), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    r.json()
}

/// The operation object for a route, if the document has it.
fn operation<'a>(doc: &'a Value, method: &http::Method, path: &str) -> Option<&'a Value> {
    doc["paths"]
        .get(path)?
        .get(method.as_str().to_lowercase())
        .filter(|op| op.is_object())
}

#[tokio::test]
async fn every_api_route_is_in_the_served_document() {
    let t = TestServer::start().await;
    let doc = served_doc(&t).await;
    let api_routes: Vec<_> = ROUTES.iter().filter(|r| r.1.starts_with("/api")).collect();
    assert!(api_routes.len() >= 20, "the route table looks truncated");
    let missing: Vec<String> = api_routes
        .iter()
        .filter(|(m, p, _)| operation(&doc, m, p).is_none())
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );
}

#[tokio::test]
async fn document_is_openapi_3_1() {
    let t = TestServer::start().await;
    let doc = served_doc(&t).await;
    let version = doc["openapi"].as_str().expect("an `openapi` string");
    assert!(version.starts_with("3.1"), "openapi = {version}");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["paths"].is_object());
}

/// Public rows are `security: []`, every other row names at least one scheme; each operation
/// has a summary and responses; relay rows are documented too.
#[tokio::test]
async fn operations_match_the_route_table() {
    let t = TestServer::start().await;
    let doc = served_doc(&t).await;
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for (m, p, route) in ROUTES {
        let access = &route.access();
        let op = operation(&doc, m, p).unwrap_or_else(|| panic!("{m} {p} is not documented"));
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{m} {p}: no summary"
        );
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{m} {p}: no responses"
        );
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{m} {p}: no security"));
        if *access == Access::Public {
            assert!(
                security.is_empty(),
                "{m} {p} is public but documented with security {security:?}"
            );
        } else {
            assert!(
                !security.is_empty(),
                "{m} {p} needs auth but is documented as public"
            );
            for req in security {
                for name in req.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(name),
                        "{m} {p}: unknown security scheme {name}"
                    );
                }
            }
        }
        // A path parameter the route has is declared.
        if p.contains("{id}") {
            let params = op["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{m} {p}: no parameters"));
            assert!(
                params
                    .iter()
                    .any(|q| q["name"] == "id" && q["in"] == "path" && q["required"] == true),
                "{m} {p}: the id path parameter is not declared"
            );
        }
    }
    for name in [
        "User",
        "Key",
        "KeyCreated",
        "Channel",
        "ChannelInput",
        "Pricing",
        "Error",
        "Status",
        "LoginResult",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name} missing"
        );
    }
}

/// Every `$ref` in the document points at something that exists.
#[tokio::test]
async fn every_ref_resolves() {
    fn walk(v: &Value, doc: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ok = r
                        .strip_prefix('#')
                        .is_some_and(|ptr| doc.pointer(ptr).is_some());
                    if !ok {
                        bad.push(r.clone());
                    }
                }
                m.values().for_each(|x| walk(x, doc, bad));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, doc, bad)),
            _ => {}
        }
    }
    let t = TestServer::start().await;
    let doc = served_doc(&t).await;
    let mut bad = Vec::new();
    walk(&doc, &doc, &mut bad);
    assert!(bad.is_empty(), "dangling $refs: {bad:?}");
}

/// The parts filled in when served: the zones `tz` accepts and each option's value schema.
#[tokio::test]
async fn served_document_lists_zones_and_option_schemas() {
    let t = TestServer::start().await;
    let doc = served_doc(&t).await;
    let tz = &doc["components"]["parameters"]["TimeZone"]["schema"]["anyOf"];
    let names = tz[0]["enum"].as_array().unwrap();
    for z in ["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata"] {
        assert!(names.iter().any(|n| n == z), "{z} missing");
    }
    assert_eq!(
        (tz[1]["minimum"].as_i64(), tz[1]["maximum"].as_i64()),
        (Some(-720), Some(840))
    );
    let put =
        &doc["paths"]["/api/option"]["put"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(put["additionalProperties"], false);
    let r = &put["properties"]["relay.retries"];
    assert_eq!(
        (r["type"].as_str(), r["maximum"].as_f64()),
        (Some("integer"), Some(10.0))
    );
    let listed = t.get("/api/option").await;
    assert_eq!(
        put["properties"].as_object().unwrap().len(),
        listed.as_array().unwrap().len(),
        "every option has a value schema"
    );
}
