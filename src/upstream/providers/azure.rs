//! Azure OpenAI: OpenAI-shaped bodies (passed through as they are, read as OpenAI's), Azure's
//! URLs and `api-key` header. The channel's base URL is the resource endpoint, as
//! `AzureOpenAI(azure_endpoint=…)` takes it: `https://{resource}.openai.azure.com`.
//!
//! - deployments route (the default): `{base}/openai/deployments/{deployment}/chat/completions`
//!   `?api-version={settings.api_version}`, the deployment being the channel's name for the
//!   model (its mapping, else the client's model name);
//! - v1 route (`settings.azure_route = "v1"`): `{base}/openai/v1/chat/completions`, no
//!   api-version; the deployment is the body's `model`, which the mapping already set.

use super::openai::{OpenAi, header_value, post};
use super::{BuildError, EventInfo, Provider};
use crate::billing::Usage;
use crate::secret::Secret;
use crate::store::channel_settings::AzureRoute;
use crate::store::channels::ChannelRow;
use crate::upstream::Endpoint;
use bytes::Bytes;
use http::Request;
use http::header::HeaderName;
use http_body_util::Full;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

pub struct Azure;

/// Escaped in a deployment name: everything a path segment cannot hold as it is.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// The URL of one call.
pub fn url(ch: &ChannelRow, model: &str, endpoint: Endpoint) -> String {
    let base = ch.base_url.trim_end_matches('/');
    // Given as the SDK's base_url (`…/openai`) instead of the endpoint: the same resource.
    let base = base.strip_suffix("/openai").unwrap_or(base);
    match ch.settings.azure_route() {
        AzureRoute::Deployments => format!(
            "{base}/openai/deployments/{}{}?api-version={}",
            utf8_percent_encode(model, SEGMENT),
            endpoint.path(),
            ch.settings.api_version()
        ),
        AzureRoute::V1 => format!("{base}/openai/v1{}", endpoint.path()),
    }
}

impl Provider for Azure {
    fn build_request(
        &self,
        ch: &ChannelRow,
        key: &Secret,
        model: &str,
        endpoint: Endpoint,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        let auth = header_value(ch, key.expose())?;
        post(
            ch,
            url(ch, model, endpoint),
            HeaderName::from_static("api-key"),
            auth,
            body,
        )
    }

    fn read_response(&self, endpoint: Endpoint, body: &[u8], text: &mut String) -> Option<Usage> {
        OpenAi.read_response(endpoint, body, text)
    }

    fn read_event(&self, endpoint: Endpoint, data: &[u8], text: &mut String) -> EventInfo {
        OpenAi.read_event(endpoint, data, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::channel_settings::ChannelSettings;
    use crate::store::channels::ChannelFields;

    fn ch(base: &str, settings: ChannelSettings) -> ChannelRow {
        ChannelRow::new(
            1,
            0,
            ChannelFields {
                kind: "azure".into(),
                name: "a".into(),
                base_url: base.into(),
                api_key: Secret::new("k1"),
                models: vec!["gpt-4o".into()],
                model_mapping: Default::default(),
                groups: vec!["default".into()],
                priority: 0,
                weight: 1,
                enabled: true,
                test_model: None,
                settings,
            },
            Default::default(),
        )
    }

    #[test]
    fn urls_follow_the_route_and_version() {
        let c = ch("https://res.openai.azure.com/", ChannelSettings::default());
        assert_eq!(
            url(&c, "my deploy", Endpoint::Chat),
            "https://res.openai.azure.com/openai/deployments/my%20deploy/chat/completions?api-version=2024-10-21"
        );
        let c = ch(
            "https://res.openai.azure.com/openai",
            ChannelSettings {
                api_version: Some("2025-04-01-preview".into()),
                azure_route: None,
                responses_api: None,
            },
        );
        assert_eq!(
            url(&c, "emb", Endpoint::Embeddings),
            "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2025-04-01-preview"
        );
        let c = ch(
            "https://res.openai.azure.com",
            ChannelSettings {
                api_version: None,
                azure_route: Some(AzureRoute::V1),
                responses_api: None,
            },
        );
        assert_eq!(
            url(&c, "x", Endpoint::Completions),
            "https://res.openai.azure.com/openai/v1/completions"
        );
        let r = Azure
            .build_request(&c, &Secret::new("k1"), "x", Endpoint::Chat, Bytes::new())
            .unwrap();
        assert_eq!(r.headers()["api-key"], "k1");
        assert!(r.headers()["api-key"].is_sensitive());
        assert!(r.headers().get("authorization").is_none());
    }
}
