//! Settings that only some channel kinds take, typed, kept as JSON in `channels.settings`.
//! The API takes and shows them as the channel's `settings` object; [`ChannelSettings::check`]
//! refuses a setting the kind does not take, or a value it cannot use, with a message.

use serde::{Deserialize, Serialize};

/// Azure's newest dated GA `api-version` of the data-plane inference API when this was
/// written; a channel sets its own with `settings.api_version`.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Which of Azure's routes an azure channel calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureRoute {
    /// `{base}/openai/deployments/{deployment}/{path}?api-version={v}`.
    #[default]
    Deployments,
    /// `{base}/openai/v1/{path}`, no api-version; the deployment goes in the body's `model`.
    V1,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// azure, deployments route: the `api-version` query parameter; `None` = the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// azure: the route; `None` = deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_route: Option<AzureRoute>,
    /// openai and azure: whether the upstream has OpenAI's Responses API (`/v1/responses`).
    /// `false` (an OpenAI-compatible server with chat/completions only: vLLM, Ollama, most
    /// providers) makes sluice convert Responses clients' calls to chat for it. `None` = an
    /// openai channel has it, an azure channel has it on the v1 route only (the deployments
    /// route has no Responses path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responses_api: Option<bool>,
}

impl ChannelSettings {
    /// The stored column (an unreadable value reads as no settings).
    pub fn parse(json: &str) -> ChannelSettings {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn api_version(&self) -> &str {
        self.api_version
            .as_deref()
            .unwrap_or(AZURE_DEFAULT_API_VERSION)
    }

    pub fn azure_route(&self) -> AzureRoute {
        self.azure_route.unwrap_or_default()
    }

    /// Does an OpenAI-shaped channel have the Responses API (see `responses_api`)?
    pub fn responses_api(&self, kind: &str) -> bool {
        self.responses_api
            .unwrap_or(kind != "azure" || self.azure_route() == AzureRoute::V1)
    }

    /// Can a channel of `kind` use these settings? The message says what to send instead.
    pub fn check(&self, kind: &str) -> Result<(), String> {
        let azure = kind == "azure";
        if self.responses_api.is_some() && !matches!(kind, "openai" | "azure") {
            return Err(format!(
                "settings.responses_api applies to openai and azure channels only; leave it out for kind {kind:?}"
            ));
        }
        if !azure && (self.api_version.is_some() || self.azure_route.is_some()) {
            return Err(format!(
                "settings.api_version and settings.azure_route apply to azure channels only; send settings: {{}} for kind {kind:?}"
            ));
        }
        if let Some(v) = &self.api_version {
            let ok = (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(format!(
                    "settings.api_version {v:?} is not an API version: use letters, digits, '-' and '.', e.g. \"{AZURE_DEFAULT_API_VERSION}\" or \"2025-04-01-preview\""
                ));
            }
            if self.azure_route() == AzureRoute::V1 {
                return Err(
                    "settings.api_version is not used by the v1 route: leave it out, or use azure_route \"deployments\"".into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_against_the_kind() {
        let none = ChannelSettings::default();
        assert_eq!(none.check("openai"), Ok(()));
        assert_eq!(none.check("azure"), Ok(()));
        assert_eq!(none.api_version(), AZURE_DEFAULT_API_VERSION);
        assert_eq!(none.azure_route(), AzureRoute::Deployments);
        let v = ChannelSettings {
            api_version: Some("2025-04-01-preview".into()),
            azure_route: None,
            responses_api: None,
        };
        assert_eq!(v.check("azure"), Ok(()));
        assert!(
            v.check("openai")
                .unwrap_err()
                .contains("azure channels only")
        );
        let bad = ChannelSettings {
            api_version: Some("2024-10-21&x=1".into()),
            azure_route: None,
            responses_api: None,
        };
        assert!(
            bad.check("azure")
                .unwrap_err()
                .contains("not an API version")
        );
        let v1 = ChannelSettings {
            api_version: Some("2024-10-21".into()),
            azure_route: Some(AzureRoute::V1),
            responses_api: None,
        };
        assert!(v1.check("azure").unwrap_err().contains("v1 route"));
        assert_eq!(
            ChannelSettings::parse(r#"{"azure_route":"v1"}"#).azure_route(),
            AzureRoute::V1
        );
        assert_eq!(ChannelSettings::parse("nonsense"), none);
        // The Responses API: openai channels have it unless marked, azure ones on v1 only.
        assert!(none.responses_api("openai"));
        assert!(!none.responses_api("azure"));
        let chat_only = ChannelSettings::parse(r#"{"responses_api":false}"#);
        assert!(!chat_only.responses_api("openai"));
        assert_eq!(chat_only.check("openai"), Ok(()));
        assert!(
            chat_only
                .check("anthropic")
                .unwrap_err()
                .contains("openai and azure channels only")
        );
        assert!(ChannelSettings::parse(r#"{"azure_route":"v1"}"#).responses_api("azure"));
        assert_eq!(none.to_json(), "{}");
    }
}
