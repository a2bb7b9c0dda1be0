//! Who is calling: API keys for `/v1`, sessions and personal access tokens for `/api`;
//! password hashing; login throttling; CSRF for cookie sessions.

use crate::catalog::{Catalog, KeyEntry, UserEntry};
use crate::error::ApiError;
use crate::store::Store;
use crate::store::users::{Role, UserRow};
use crate::util;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The file in the data directory that holds a generated root password until root changes it
/// (the password change deletes it; while it exists, `GET /api/me` says `must_change_password`).
pub const INITIAL_ROOT_PASSWORD_FILE: &str = "initial-root-password";

pub const SESSION_COOKIE: &str = "sluice_session";
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

/// argon2id with OWASP's minimum: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (CPU-heavy: call from a blocking thread).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored hash (CPU-heavy: call from a blocking thread).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A password an operator may set: long enough to resist guessing, short enough to hash fast.
pub fn check_password_policy(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 {
        return Err(ApiError::BadRequest(
            "the password must be at least 8 characters".into(),
        ));
    }
    if p.len() > 1024 {
        return Err(ApiError::BadRequest(
            "the password must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// The bearer secret from `Authorization: Bearer …` or `x-api-key`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A cookie's value from the `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The caller of a `/v1` route: a valid, enabled, unexpired key and its enabled user.
pub struct KeyCaller {
    pub key: Arc<KeyEntry>,
    pub user: Arc<UserEntry>,
}

/// Looks the key up in memory by digest; no SQLite read on the request path.
pub fn authenticate_key(catalog: &Catalog, headers: &HeaderMap) -> Result<KeyCaller, ApiError> {
    let secret = bearer(headers).ok_or_else(|| {
        ApiError::InvalidApiKey(
            "no API key given: send it as 'Authorization: Bearer sk-…' or in the x-api-key header"
                .into(),
        )
    })?;
    let key = catalog
        .key(&util::digest(secret))
        .ok_or_else(|| ApiError::InvalidApiKey("the API key is not valid".into()))?;
    if !key.enabled {
        return Err(ApiError::Forbidden("the API key is disabled".into()));
    }
    if let Some(exp) = key.expires_at
        && exp <= util::now_secs()
    {
        return Err(ApiError::Forbidden("the API key has expired".into()));
    }
    let user = catalog
        .user(key.user_id)
        .ok_or_else(|| ApiError::InvalidApiKey("the API key is not valid".into()))?;
    if !user.enabled {
        return Err(ApiError::Forbidden(
            "the account that owns this API key is disabled".into(),
        ));
    }
    Ok(KeyCaller { key, user })
}

/// The caller of an `/api` route.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    /// Present when the caller used a session cookie (state changes then need the CSRF token).
    pub csrf_token: Option<String>,
    /// The digest of that session cookie: the session a password change keeps.
    pub session: Option<[u8; 32]>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.user.role >= Role::Admin
    }
    pub fn is_root(&self) -> bool {
        self.user.role == Role::Root
    }
}

/// Resolves a session cookie or personal access token to its user.
pub async fn authenticate_user(store: &Store, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let now = util::now_secs();
    if let Some(token) = bearer(headers) {
        let digest = util::digest(token);
        let user = store
            .read(move |c| crate::store::users::by_access_token(c, &digest))
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("the access token is not valid".into()))?;
        return active(Principal {
            user,
            csrf_token: None,
            session: None,
        });
    }
    if let Some(sid) = cookie(headers, SESSION_COOKIE) {
        let digest = util::digest(sid);
        let found = store
            .read(move |c| crate::store::sessions::lookup(c, &digest, now))
            .await?;
        if let Some((user, csrf)) = found {
            return active(Principal {
                user,
                csrf_token: Some(csrf),
                session: Some(digest),
            });
        }
        return Err(ApiError::Unauthenticated(
            "the session has expired: sign in again".into(),
        ));
    }
    Err(ApiError::Unauthenticated(
        "sign in first (POST /api/auth/login) or send a personal access token as 'Authorization: Bearer …'".into(),
    ))
}

fn active(p: Principal) -> Result<Principal, ApiError> {
    if !p.user.enabled {
        return Err(ApiError::Forbidden("this account is disabled".into()));
    }
    Ok(p)
}

/// Cookie-authenticated state changes must carry the session's CSRF token and, when the browser
/// sends an `Origin`, come from this server's own origin.
pub fn check_csrf(
    p: &Principal,
    method: &http::Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(expected) = &p.csrf_token else {
        return Ok(()); // bearer tokens are not sent by browsers on their own
    };
    if matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    ) {
        return Ok(());
    }
    check_origin(headers)?;
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::Forbidden(
            "missing or wrong X-CSRF-Token header (it is returned by POST /api/auth/login and GET /api/me)".into(),
        ));
    }
    Ok(())
}

/// Refuses a request whose `Origin` names another site than the `Host` it was sent to.
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return Err(ApiError::Forbidden("cross-site request refused".into()));
    }
    Ok(())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Client address: the peer, or the last `X-Forwarded-For` hop when the peer is a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(peer)
}

const MAX_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);
const LOCKOUT: Duration = Duration::from_secs(300);
/// Bound on tracked names and addresses, so a flood of made-up usernames cannot grow memory.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
struct Failures {
    recent: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// Login throttling: 5 failures within a minute for one account or one client address lock
/// that account or address for five minutes.
#[derive(Default)]
pub struct LoginThrottle {
    by_key: parking_lot::Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    fn keys(username: &str, ip: IpAddr) -> [String; 2] {
        [format!("u:{}", username.to_lowercase()), format!("ip:{ip}")]
    }

    /// Seconds to wait, when either the account or the address is locked.
    pub fn check(&self, username: &str, ip: IpAddr, now: Instant) -> Option<u64> {
        let map = self.by_key.lock();
        Self::keys(username, ip)
            .iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    pub fn record_failure(&self, username: &str, ip: IpAddr, now: Instant) {
        let mut map = self.by_key.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
                    || f.recent.back().is_some_and(|t| now - *t < WINDOW)
            });
        }
        for k in Self::keys(username, ip) {
            let f = map.entry(k).or_default();
            while f
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > WINDOW)
            {
                f.recent.pop_front();
            }
            f.recent.push_back(now);
            if f.recent.len() >= MAX_FAILURES {
                f.locked_until = Some(now + LOCKOUT);
                f.recent.clear();
            }
        }
    }

    pub fn record_success(&self, username: &str, ip: IpAddr) {
        let mut map = self.by_key.lock();
        map.remove(&Self::keys(username, ip)[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_and_the_address() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("root", ip, now);
        }
        assert!(t.check("root", ip, now).is_none());
        t.record_failure("root", ip, now);
        assert!(t.check("root", ip, now).is_some());
        // another address, same account: still locked
        assert!(t.check("root", "10.0.0.2".parse().unwrap(), now).is_some());
        // another account, same address: locked too
        assert!(t.check("alice", ip, now).is_some());
        assert!(
            t.check("root", ip, now + LOCKOUT + Duration::from_secs(1))
                .is_none()
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        assert_eq!(client_ip(proxy, &h, &[proxy]).to_string(), "5.6.7.8");
    }

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }
}
