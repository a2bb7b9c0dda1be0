//! Bark: `GET` on the user's URL template, with `{{title}}` and `{{content}}` percent-encoded.
//! The template's host carries no placeholder (checked at save), so the host a message is
//! sent to is the one the SSRF guard checked.

use super::message::{Message, render as fill};
use super::outbound::{Method, Request};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

/// Everything but RFC 3986's unreserved characters is escaped, so a title cannot add a path
/// segment, a query parameter or a fragment.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL with the title and content filled in.
pub fn render(template: &str, title: &str, content: &str) -> String {
    let mut values = Map::new();
    values.insert(
        "title".into(),
        Value::from(utf8_percent_encode(title, COMPONENT).to_string()),
    );
    values.insert(
        "content".into(),
        Value::from(utf8_percent_encode(content, COMPONENT).to_string()),
    );
    fill(template, &values)
}

pub fn request(template: &str, msg: &Message) -> Request {
    Request {
        method: Method::Get,
        url: render(template, &msg.title, &msg.content()),
        headers: Vec::new(),
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_and_content_are_escaped() {
        let u = render(
            "https://api.day.app/KEY/{{title}}/{{ content }}?group=sluice",
            "Low / quota?",
            "50% left & #1",
        );
        assert_eq!(
            u,
            "https://api.day.app/KEY/Low%20%2F%20quota%3F/50%25%20left%20%26%20%231?group=sluice"
        );
    }
}
