//! Status, sign-in and the caller's own account.

use super::MAX_API_BODY;
use crate::auth::{self, Principal, SESSION_COOKIE, SESSION_TTL_SECS};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{sessions, users};
use crate::util;
use crate::web::{Resp, full, json, no_content, parse_json, read_body, with_type};
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub fn status(state: &AppState) -> Resp {
    json(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": state.started.elapsed().as_secs(),
            "healthy": crate::dbhealth::store_ready(state)
                && !state.draining.load(std::sync::atomic::Ordering::Relaxed),
        }),
    )
}

pub fn openapi() -> Resp {
    with_type(StatusCode::OK, "application/json", full(DOCUMENT.clone()))
}

pub const OPENAPI: &str = include_str!("../openapi.json");

/// The served document: the file, with the time-zone parameter's allowed names filled in from
/// the zone database compiled into this binary (so the document and `tz` parsing agree).
static DOCUMENT: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(OPENAPI) else {
        return bytes::Bytes::from_static(OPENAPI.as_bytes());
    };
    if let Some(schema) = doc.pointer_mut("/components/parameters/TimeZone/schema") {
        *schema = crate::store::usage::Zone::schema();
    }
    for path in ["~1api~1option/put", "~1api~1option~1import/put"] {
        let at = format!("/paths/{path}/requestBody/content/application~1json/schema");
        if let Some(schema) = doc.pointer_mut(&at) {
            *schema = crate::settings::meta::document_schema();
        }
    }
    serde_json::to_vec(&doc)
        .map(bytes::Bytes::from)
        .unwrap_or_else(|_| bytes::Bytes::from_static(OPENAPI.as_bytes()))
});

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// A hash to verify against when the user does not exist, so both cases take the same time.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| auth::hash_password("not a real password").unwrap_or_default())
}

pub async fn login(
    state: &Arc<AppState>,
    req: http::Request<Incoming>,
    ip: IpAddr,
) -> Result<Resp, ApiError> {
    auth::check_origin(req.headers())?;
    let (parts, body) = read_body(req, MAX_API_BODY).await?;
    let b: LoginBody = parse_json(&parts, &body)?;
    if let Some(wait) = state.throttle.check(&b.username, ip, Instant::now()) {
        return Err(ApiError::Throttled { retry_after: wait });
    }
    let name = b.username.clone();
    let found = state
        .store
        .read(move |c| users::credentials(c, &name))
        .await?;
    let password = b.password;
    let (user, ok) = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) => {
            let ok = auth::verify_password(&password, &hash);
            (Some(user), ok)
        }
        None => {
            auth::verify_password(&password, dummy_hash());
            (None, false)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match (user, ok) {
        (Some(u), true) if u.enabled => u,
        (Some(_), true) => return Err(ApiError::Forbidden("this account is disabled".into())),
        (found, _) => {
            state
                .throttle
                .record_failure(&b.username, ip, Instant::now());
            // A name that is no account is often a password typed into the wrong field: it is
            // not written down.
            match found {
                Some(u) => log::warn!("failed sign-in for {:?} from {ip}", u.username),
                None => log::warn!("failed sign-in for an unknown username from {ip}"),
            }
            return Err(ApiError::Unauthenticated(
                "wrong username or password".into(),
            ));
        }
    };
    state.throttle.record_success(&b.username, ip);
    let sid = util::random_token(43);
    let csrf = util::random_token(32);
    let digest = util::digest(&sid);
    let (uid, csrf2) = (user.id, csrf.clone());
    let now = util::now_secs();
    state
        .store
        .writer
        .exec(move |c| {
            sessions::purge_expired(c, now)?;
            sessions::create(c, &digest, uid, &csrf2, now + SESSION_TTL_SECS)
        })
        .await?;
    log::info!("{} signed in from {ip}", user.username);
    let mut resp = json(StatusCode::OK, &json!({"user": user, "csrf_token": csrf}));
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL_SECS}{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn logout(
    state: &AppState,
    parts: &http::request::Parts,
    _p: &Principal,
) -> Result<Resp, ApiError> {
    if let Some(sid) = auth::cookie(&parts.headers, SESSION_COOKIE) {
        let digest = util::digest(sid);
        state
            .store
            .writer
            .exec(move |c| sessions::delete(c, &digest))
            .await?;
    }
    let mut resp = json(StatusCode::OK, &json!({"ok": true}));
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sluice_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// The caller's account, the session's CSRF token, and `must_change_password` (root still has
/// the generated first password).
pub async fn me(state: &AppState, p: &Principal) -> Resp {
    let must_change = super::password::must_change(state, p).await;
    let mut v = crate::billing::display::with_display(
        &p.user,
        crate::billing::display::USER_FIELDS,
        &state.catalog.options().display,
    );
    if let Some(obj) = v.as_object_mut() {
        if let Some(csrf) = &p.csrf_token {
            obj.insert("csrf_token".into(), json!(csrf));
        }
        obj.insert("must_change_password".into(), json!(must_change));
    }
    json(StatusCode::OK, &v)
}

/// Revokes the caller's personal access token (the console's "Revoke token"); 204 whether or
/// not there was one, so a retry after a lost answer is not an error.
pub async fn revoke_access_token(state: &AppState, p: &Principal) -> Result<Resp, ApiError> {
    let uid = p.user.id;
    let had = state
        .store
        .writer
        .exec(move |c| users::clear_access_token(c, uid))
        .await?;
    if had {
        log::info!("{} revoked their access token", p.user.username);
    }
    Ok(no_content())
}

/// Creates (or replaces) the caller's personal access token; shown once.
pub async fn access_token(state: &AppState, p: &Principal) -> Result<Resp, ApiError> {
    let token = format!("pat-{}", util::random_token(48));
    let digest = util::digest(&token);
    let uid = p.user.id;
    state
        .store
        .writer
        .exec(move |c| users::set_access_token(c, uid, &digest))
        .await?;
    Ok(json(StatusCode::CREATED, &json!({"token": token})))
}
