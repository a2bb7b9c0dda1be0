//! `/api/channels`: upstream providers (admins only). The secret is write-only: responses
//! carry a masked form.

use super::listing::{ListParams, page_json};
use super::{Refresh, commit_change, manage_entry, refresh};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::secret::Secret;
use crate::state::AppState;
use crate::store::channel_keys;
use crate::store::channels::{self, ChannelFields, ChannelRow, ChannelSettings, ChannelStatus};
use crate::upstream::providers;
use crate::util;
use crate::web::{Resp, json, no_content, parse_json};
use http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every channel (no parameters), or one page of a search (see [`super::listing`]).
pub async fn list(state: &AppState, query: &str) -> Result<Resp, ApiError> {
    let lp = ListParams::parse(query)?;
    if lp.user_id.is_some() {
        return Err(ApiError::BadRequest(
            "channels take status, q, p, page_size, sort and order".into(),
        ));
    }
    let status = match lp.status.as_deref() {
        None => None,
        Some("enabled") => Some(ChannelStatus::Enabled),
        Some("disabled") => Some(ChannelStatus::Disabled),
        Some("auto_disabled") => Some(ChannelStatus::AutoDisabled),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status must be enabled, disabled or auto_disabled".into(),
            ));
        }
    };
    let query = match (lp.query(&channels::LISTING)?, status) {
        (Some(q), _) => Some(q),
        // A state filter alone pages too (it is new: no caller expects an array from it).
        (None, Some(_)) => ListParams {
            p: Some(1),
            ..Default::default()
        }
        .query(&channels::LISTING)?,
        (None, None) => None,
    };
    let Some(q) = query else {
        let rows = state.store.read(channels::list).await?;
        let views: Vec<_> = rows.iter().map(ChannelRow::view).collect();
        return Ok(json(StatusCode::OK, &views));
    };
    let page = {
        let q = q.clone();
        state
            .store
            .read(move |c| channels::search(c, &q, status))
            .await?
    };
    Ok(json(
        StatusCode::OK,
        &page_json(&page, &q, |c| {
            serde_json::to_value(c.view()).unwrap_or(serde_json::Value::Null)
        }),
    ))
}

pub async fn get(state: &AppState, id: i64) -> Result<Resp, ApiError> {
    let row = state.store.read(move |c| channels::get(c, id)).await?;
    Ok(json(StatusCode::OK, &row.view()))
}

/// Every field optional: a create fills the defaults, a PATCH keeps the current values.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Body {
    // `null` is refused (as the schema says): leave a field out to keep it.
    #[serde(default, deserialize_with = "crate::web::not_null")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    base_url: Option<String>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    api_key: Option<Secret>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    model_mapping: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    weight: Option<i64>,
    #[serde(default, deserialize_with = "crate::web::not_null")]
    enabled: Option<bool>,
    /// `null` clears it (tests then use the first model).
    #[serde(default, deserialize_with = "present")]
    test_model: Option<Option<String>>,
    /// Replaces the kind-specific settings whole (`{}` clears them).
    #[serde(default, deserialize_with = "crate::web::not_null")]
    settings: Option<SettingsObject>,
}

/// `settings` as a JSON object only: serde's derived struct reader would also take an array
/// (`[null, null]`, its fields in order), which the schema refuses.
struct SettingsObject(ChannelSettings);

impl<'de> Deserialize<'de> for SettingsObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        serde_json::from_value(serde_json::Value::Object(map))
            .map(SettingsObject)
            .map_err(serde::de::Error::custom)
    }
}

/// A field that was sent: `Some(None)` for `null`, so a PATCH can clear it (absent stays `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Body {
    fn merge_onto(self, c: ChannelFields) -> ChannelFields {
        ChannelFields {
            kind: self.kind.unwrap_or(c.kind),
            name: self.name.unwrap_or(c.name),
            base_url: self
                .base_url
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .unwrap_or(c.base_url),
            api_key: self
                .api_key
                .map(|k| channel_keys::normalise(&k))
                .unwrap_or(c.api_key),
            models: self.models.unwrap_or(c.models),
            model_mapping: self.model_mapping.unwrap_or(c.model_mapping),
            groups: self.groups.unwrap_or(c.groups),
            priority: self.priority.unwrap_or(c.priority),
            weight: self.weight.unwrap_or(c.weight),
            enabled: self.enabled.unwrap_or(c.enabled),
            test_model: self
                .test_model
                .map(|m| m.map(|m| m.trim().to_string()))
                .unwrap_or(c.test_model),
            settings: self.settings.map_or(c.settings, |s| s.0),
        }
    }
}

/// Checks a channel before it is stored; each message says what to send instead.
pub fn validate(c: &ChannelFields) -> Result<(), ApiError> {
    if c.name.trim().is_empty() || c.name.chars().count() > 64 {
        return Err(ApiError::BadRequest("name must be 1–64 characters".into()));
    }
    if !providers::KINDS.contains(&c.kind.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "kind {:?} is not supported; use one of: {}",
            c.kind,
            providers::KINDS.join(", ")
        )));
    }
    let uri: http::Uri = c.base_url.parse().map_err(|_| {
        ApiError::BadRequest(
            "base_url is not a URL: give it as the SDKs take it, e.g. https://api.openai.com/v1"
                .into(),
        )
    })?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(ApiError::BadRequest(
            "base_url must be an http:// or https:// URL with a host and no query, e.g. https://api.openai.com/v1".into(),
        ));
    }
    if c.api_key.is_empty() {
        return Err(ApiError::BadRequest(
            "api_key (the upstream's secret key, or several, one per line) is required".into(),
        ));
    }
    if c.api_key.expose().contains('…') {
        return Err(ApiError::BadRequest(
            "api_key looks like the masked form shown by the API: send the real key, or leave api_key out to keep it".into(),
        ));
    }
    // Stored normalised (one key per line), so a line break here separates keys.
    let keys: Vec<&str> = channel_keys::split(&c.api_key).collect();
    if keys
        .iter()
        .any(|k| k.chars().any(|ch| ch.is_control() || ch == ' '))
    {
        return Err(ApiError::BadRequest(
            "api_key must not contain spaces or control characters; give several keys one per line"
                .into(),
        ));
    }
    if keys.len() > channel_keys::MAX_KEYS {
        return Err(ApiError::BadRequest(format!(
            "api_key holds {} keys; at most {} per channel",
            keys.len(),
            channel_keys::MAX_KEYS
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if !keys.iter().all(|k| seen.insert(*k)) {
        return Err(ApiError::BadRequest(
            "api_key lists the same key twice; give each key once".into(),
        ));
    }
    c.settings.check(&c.kind).map_err(ApiError::BadRequest)?;
    if c.models.is_empty() || c.models.iter().any(|m| m.trim().is_empty()) {
        return Err(ApiError::BadRequest(
            "models must list at least one model name".into(),
        ));
    }
    if c.groups.is_empty() || c.groups.iter().any(|g| g.trim().is_empty()) {
        return Err(ApiError::BadRequest(
            "groups must list at least one group (e.g. [\"default\"])".into(),
        ));
    }
    if c.weight < 0 {
        return Err(ApiError::BadRequest("weight cannot be negative".into()));
    }
    if let Some(m) = &c.test_model
        && (m.is_empty() || m.chars().count() > 128)
    {
        return Err(ApiError::BadRequest(
            "test_model must be 1–128 characters, or null to test with the first of models".into(),
        ));
    }
    Ok(())
}

/// Where a base URL sends requests: scheme, host and port (the default one when none is given),
/// compared case-insensitively. `None` when it is not a URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((scheme, uri.host()?.to_ascii_lowercase(), port))
}

fn defaults() -> ChannelFields {
    ChannelFields {
        kind: "openai".into(),
        name: String::new(),
        base_url: String::new(),
        api_key: Secret::default(),
        models: Vec::new(),
        model_mapping: BTreeMap::new(),
        groups: vec!["default".into()],
        priority: 0,
        weight: 1,
        enabled: true,
        test_model: None,
        settings: ChannelSettings::default(),
    }
}

pub async fn create(
    state: &Arc<AppState>,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: Body = parse_json(parts, body)?;
    let fields = b.merge_onto(defaults());
    validate(&fields)?;
    let log = manage_entry(&p.user, format!("created channel {:?}", fields.name));
    let row = commit_change(state, log, move |c| {
        let id = channels::insert(c, &fields, util::now_secs())?;
        channels::get(c, id)
    })
    .await?;
    refresh(state, Refresh::Channels).await;
    Ok(json(StatusCode::CREATED, &row.view()))
}

pub async fn patch(
    state: &Arc<AppState>,
    p: &Principal,
    id: i64,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: Body = parse_json(parts, body)?;
    // Sending `enabled: true` is the admin's word that the channel should take requests,
    // which overrides an automatic disable.
    let switch_on = b.enabled == Some(true);
    let (new_secret, new_url) = (b.api_key.is_some(), b.base_url.is_some());
    let current = state.store.read(move |c| channels::get(c, id)).await?;
    let old_origin = origin(&current.fields.base_url);
    let fields = b.merge_onto(current.fields);
    validate(&fields)?;
    // The stored secret was given for one server: moving the channel to another would send it
    // there on the next call or test. Whoever moves it must know the secret (or give a new one).
    if new_url && !new_secret && old_origin.is_none_or(|o| Some(o) != origin(&fields.base_url)) {
        return Err(ApiError::BadRequest(
            "base_url now names another server (scheme, host or port): send api_key with it, so the stored secret is never sent to a server it was not given for".into(),
        ));
    }
    let log = manage_entry(
        &p.user,
        format!("updated channel {:?} (id {id})", fields.name),
    );
    let row = commit_change(state, log, move |c| {
        channels::replace(c, id, &fields)?;
        if switch_on {
            channels::clear_auto_disabled(c, id)?;
            channel_keys::enable_all(c, id)?;
        }
        channels::get(c, id)
    })
    .await?;
    refresh(state, Refresh::Channels).await;
    if switch_on {
        state.channel_health.tracker.reset(id);
    }
    Ok(json(StatusCode::OK, &row.view()))
}

pub async fn delete(state: &Arc<AppState>, p: &Principal, id: i64) -> Result<Resp, ApiError> {
    let log = manage_entry(&p.user, format!("deleted channel {id}"));
    commit_change(state, log, move |c| {
        channels::delete(c, id)?;
        Ok(())
    })
    .await?;
    refresh(state, Refresh::Channels).await;
    state.channel_health.tracker.reset(id);
    Ok(no_content())
}

/// `POST /api/channels/{id}/test` body: all optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// Defaults to the channel's test_model, else its first model.
    model: Option<String>,
}

/// One small request through the channel now; the result is recorded on it and may turn it off
/// or back on (see [`crate::channel_health`]). Channels an admin disabled can be tested too.
pub async fn test(
    state: &Arc<AppState>,
    id: i64,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        parse_json(parts, body)?
    };
    if let Some(m) = &b.model
        && (m.trim().is_empty() || m.chars().count() > 128)
    {
        return Err(ApiError::BadRequest(
            "model must be 1–128 characters; leave it out to use the channel's test model".into(),
        ));
    }
    let report = crate::channel_health::test_channel(state, id, b.model).await?;
    Ok(json(StatusCode::OK, &report))
}

/// Tests every channel not disabled by an admin now, as the schedule does.
pub async fn test_all(state: &Arc<AppState>) -> Result<Resp, ApiError> {
    let report = crate::channel_health::scheduler::run_once(state).await;
    Ok(json(StatusCode::OK, &report))
}
