//! Gotify: `POST <url>/message?token=<token>` with JSON `{title, message, priority}`.
//! The token is in the query (Gotify's documented form); it never reaches a log line or the
//! delivery log, which record only the host.

use super::message::Message;
use super::outbound::{Method, Request};
use crate::secret::Secret;
use serde_json::json;
use url::Url;

pub fn request(
    base: &str,
    token: &Secret,
    priority: i64,
    msg: &Message,
) -> Result<Request, String> {
    let mut url = Url::parse(base).map_err(|e| format!("gotify_url is not a valid URL ({e})"))?;
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| "gotify_url cannot have a path".to_string())?
        .pop_if_empty()
        .push("message");
    url.query_pairs_mut().append_pair("token", token.expose());
    let body = json!({
        "title": msg.title,
        "message": msg.content(),
        "priority": priority.clamp(0, 10),
    });
    Ok(Request {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![("content-type", "application/json".to_string())],
        body: Some(body.to_string().into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_path_and_token() {
        let m = Message::test("ann", 1);
        for base in [
            "https://g.example.com",
            "https://g.example.com/",
            "https://g.example.com/gotify/",
        ] {
            let r = request(base, &Secret::new("a&b"), 7, &m).unwrap();
            assert!(r.url.ends_with("/message?token=a%26b"), "{}", r.url);
            assert!(!r.url.contains("//message"), "{}", r.url);
        }
        let r = request("https://g.example.com/gotify", &Secret::new("t"), 99, &m).unwrap();
        assert_eq!(r.url, "https://g.example.com/gotify/message?token=t");
        let v: serde_json::Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(v["priority"], 10);
        assert_eq!(v["title"], "sluice test notification");
    }
}
