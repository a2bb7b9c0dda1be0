//! Numeric query parameters are range-checked: an out-of-range value is a 400 that names the
//! parameter and the range, never a 503 from an overflowing OFFSET nor a wrapped time range
//! (issue 11 item 12).

use crate::common::TestServer;

#[tokio::test]
async fn a_huge_page_number_is_a_400_not_a_503() {
    let t = TestServer::start().await;
    for path in [
        "/api/log/self?p=4611686018427387904",
        "/api/log?p=4611686018427387904",
        "/api/log?p=1000001",
        "/api/log?p=0",
    ] {
        let r = t.api("GET", path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("p is") && msg.contains("1000000"),
            "{path}: {msg}"
        );
    }
    // The largest page number allowed is answered (empty).
    let r = t.api("GET", "/api/log?p=1000000&page_size=100", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_time_near_the_i64_maximum_is_refused_not_wrapped() {
    let t = TestServer::start().await;
    let near_max = i64::MAX - 100;
    for path in [
        format!("/api/log/stat?start_timestamp={near_max}"),
        format!("/api/log/self/stat?start_timestamp={near_max}"),
        format!("/api/log?end_timestamp={near_max}"),
        format!("/api/usage?start={near_max}"),
        format!("/api/usage/self?end={near_max}&bucket=day"),
        "/api/log/stat?start_timestamp=-1".to_string(),
        format!("DELETE /api/log?before={near_max}"),
    ] {
        let (method, path) = match path.strip_prefix("DELETE ") {
            Some(p) => ("DELETE", p.to_string()),
            None => ("GET", path),
        };
        let r = t.api(method, &path, None).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("253402300799"), "{path}: {msg}");
    }
}

#[tokio::test]
async fn ids_status_and_page_size_are_range_checked() {
    let t = TestServer::start().await;
    for (path, name) in [
        ("/api/log?user_id=0", "user_id"),
        ("/api/log?key_id=-5", "key_id"),
        ("/api/log?channel=0", "channel"),
        ("/api/log?status=1000", "status"),
        ("/api/log?page_size=101", "page_size"),
        ("/api/log?page_size=0", "page_size"),
        ("/api/usage?user_id=0", "user_id"),
    ] {
        let r = t.api("GET", path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.starts_with(&format!("{name} is")), "{path}: {msg}");
    }
}
