//! Health, readiness, stats and metrics.

use super::{commit_change, manage_entry};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::profiler::{FileKind, ProfileError};
use crate::state::AppState;
use crate::web::{Resp, full, json, parse_json, with_type};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;

/// Liveness: the process answers.
pub fn healthz() -> Resp {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Readiness: migrations ran (they do before the listener opens), the database answers and can
/// commit, and the server is not draining. Load balancers and `sluice healthcheck` use it.
pub fn readyz(state: &AppState) -> Resp {
    let db = crate::dbhealth::store_ready(state);
    let draining = state.draining.load(Ordering::Relaxed);
    let ready = db && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &json!({"ready": ready, "database": if db { "ok" } else { "failing" }, "draining": draining}),
    )
}

/// The full stats for admins, as JSON.
pub fn stats(state: &AppState) -> Resp {
    let mut v = state.metrics.snapshot(&state.gauges());
    v["connections"] = state.connections.snapshot();
    json(StatusCode::OK, &v)
}

/// Prometheus text format.
pub fn metrics(state: &AppState) -> Resp {
    let mut text = state.metrics.prometheus(&state.gauges());
    state.connections.write_prometheus(&mut text);
    with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        full(text),
    )
}

fn profile_error(e: ProfileError) -> ApiError {
    match e {
        ProfileError::Busy => {
            ApiError::Conflict("a profile is being recorded; try again when it ends".into())
        }
        ProfileError::NotFound => ApiError::NotFound("no such profile".into()),
        ProfileError::Invalid(m) => ApiError::BadRequest(m),
        ProfileError::Io(e) => ApiError::Internal(format!("profile files: {e}")),
        ProfileError::Pprof(m) => ApiError::Internal(format!("profiler: {m}")),
    }
}

/// The profiler's status and the stored profiles, newest first.
pub async fn profiles(state: &AppState) -> Result<Resp, ApiError> {
    let p = state.profiler.clone();
    let list = tokio::task::spawn_blocking(move || p.list())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(profile_error)?;
    Ok(json(
        StatusCode::OK,
        &json!({"status": state.profiler.status(), "profiles": list}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    seconds: Option<u64>,
}

/// Records a profile now for `seconds` (default: the configured duration); answers when written.
pub async fn profile_now(
    state: &AppState,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: ProfileBody = if body.is_empty() {
        ProfileBody { seconds: None }
    } else {
        parse_json(parts, body)?
    };
    let secs = b
        .seconds
        .unwrap_or(state.profiler.config().duration.as_secs());
    if !(1..=600).contains(&secs) {
        return Err(ApiError::BadRequest("seconds must be 1 to 600".into()));
    }
    log::info!("{} started a {secs} s CPU profile", p.user.username);
    let info = state
        .profiler
        .profile_now(std::time::Duration::from_secs(secs))
        .await
        .map_err(profile_error)?;
    Ok(json(StatusCode::CREATED, &info))
}

/// Downloads `cpu-….pb` or `cpu-….svg`.
pub async fn profile_file(state: &AppState, file: &str) -> Result<Resp, ApiError> {
    // A name that is not a profile's (wrong shape, or no real date) names no profile: 404.
    let not_found = |e: ProfileError| match e {
        ProfileError::Invalid(_) => ApiError::NotFound("no such profile".into()),
        other => profile_error(other),
    };
    let (name, kind) = FileKind::split_file_name(file).map_err(not_found)?;
    let path = state.profiler.file_path(name, kind).map_err(not_found)?;
    let data = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("reading {}: {e}", path.display())))?;
    let mut r = with_type(StatusCode::OK, kind.content_type(), full(data));
    let h = r.headers_mut();
    // The flame graph carries inline script: never run it in our origin.
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static("sandbox allow-scripts"),
    );
    // The protobuf is for tools: download it. The flame graph may be viewed in the browser.
    if kind == FileKind::Pb
        && let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
    {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

pub fn logging() -> Resp {
    json(
        StatusCode::OK,
        &json!({"debug": crate::logging::debug_enabled()}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggingBody {
    debug: bool,
}

/// Turns DEBUG lines on or off at run time (until the next restart; the config file's `debug`
/// sets the value at start).
pub async fn set_logging(
    state: &AppState,
    p: &Principal,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let b: LoggingBody = parse_json(parts, body)?;
    let log = manage_entry(
        &p.user,
        format!("set DEBUG logging {}", if b.debug { "on" } else { "off" }),
    );
    commit_change(state, log, |_| Ok(())).await?;
    crate::logging::set_debug(b.debug);
    log::info!(
        "DEBUG logging turned {} by {}",
        if b.debug { "on" } else { "off" },
        p.user.username
    );
    Ok(logging())
}
