//! Every route in one table. Authentication is on by default: a route is public only when
//! its row says `Public`.

use crate::relay::RelayRoute;
use http::Method;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A sluice API key (`Authorization: Bearer sk-…` or `x-api-key`).
    ApiKey,
    /// A signed-in user (session cookie or personal access token).
    User,
    /// A signed-in admin or root.
    Admin,
    /// Root only: what hands out every secret the server keeps (database downloads).
    Root,
    /// Prometheus scrapes: an admin token, or loopback when the `metrics_from_loopback` option allows.
    Metrics,
}

/// What a route does, with who may call it: the dispatch matches this enum and each handler
/// enum with no catch-all arm, so a route cannot reach a handler of another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Public(Open),
    /// A sluice API key: the relay's routes.
    ApiKey(RelayRoute),
    /// Prometheus scrapes.
    Metrics,
    /// The playground: a signed-in user's chat call through the relay.
    Playground,
    User(Api),
    Admin(Api),
    Root(Api),
}

impl Route {
    pub fn access(self) -> Access {
        match self {
            Route::Public(_) => Access::Public,
            Route::ApiKey(_) => Access::ApiKey,
            Route::Metrics => Access::Metrics,
            Route::Playground | Route::User(_) => Access::User,
            Route::Admin(_) => Access::Admin,
            Route::Root(_) => Access::Root,
        }
    }
}

/// The routes that need no sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Status,
    Healthz,
    Readyz,
    OpenApi,
    Login,
}

/// The admin API's routes for a signed-in user (their access is in [`Route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Stats,
    ProfilesList,
    ProfilesStart,
    ProfileGet,
    LoggingGet,
    LoggingPut,
    BackupsList,
    BackupsCreate,
    BackupGet,
    BackupHotCopy,
    Logout,
    Me,
    AccessToken,
    AccessTokenRevoke,
    MePassword,
    UsersList,
    UsersCreate,
    UserGet,
    UserPatch,
    UserDelete,
    KeysList,
    KeysCreate,
    KeyGet,
    KeyPatch,
    KeyDelete,
    ChannelsList,
    ChannelsCreate,
    ChannelGet,
    ChannelPatch,
    ChannelDelete,
    ChannelTest,
    ChannelsTestAll,
    OptionsGet,
    OptionsPut,
    OptionsExport,
    LogsList,
    LogsSelf,
    LogsStat,
    LogsSelfStat,
    LogsDelete,
    LogsExport,
    LogsSelfExport,
    ModelPrices,
    Dashboard,
    ChannelStats,
    OwnDeliveries,
    UsageAll,
    UsageSelf,
    Reconcile,
    Anomalies,
    OptionsImport,
    NotifyGet,
    NotifyPut,
    NotifyTest,
    NotifyDeliveries,
}

use Api::*;
use Open::*;
use RelayRoute::*;
use Route::*;

/// (method, path, route). `/api` rows must appear in `openapi.json` (a test checks).
pub const ROUTES: &[(Method, &str, Route)] = &[
    (Method::GET, "/api/status", Public(Status)),
    (Method::GET, "/healthz", Public(Healthz)),
    (Method::GET, "/readyz", Public(Readyz)),
    (Method::GET, "/metrics", Route::Metrics),
    (Method::GET, "/api/stats", Admin(Stats)),
    (Method::GET, "/api/profiles", Admin(ProfilesList)),
    (Method::POST, "/api/profiles", Admin(ProfilesStart)),
    (Method::GET, "/api/profiles/{id}", Admin(ProfileGet)),
    (Method::GET, "/api/logging", Admin(LoggingGet)),
    (Method::PUT, "/api/logging", Admin(LoggingPut)),
    (Method::GET, "/api/backups", Admin(BackupsList)),
    (Method::POST, "/api/backups", Admin(BackupsCreate)),
    (Method::GET, "/api/backups/{id}", Root(BackupGet)),
    (Method::GET, "/api/backup/hot-copy", Root(BackupHotCopy)),
    (Method::GET, "/api/openapi.json", Public(OpenApi)),
    (Method::POST, "/api/auth/login", Public(Login)),
    (Method::POST, "/api/auth/logout", User(Logout)),
    (Method::GET, "/api/me", User(Me)),
    (Method::POST, "/api/me/access-token", User(AccessToken)),
    (
        Method::DELETE,
        "/api/me/access-token",
        User(AccessTokenRevoke),
    ),
    (Method::POST, "/api/me/password", User(MePassword)),
    (Method::GET, "/api/users", Admin(UsersList)),
    (Method::POST, "/api/users", Admin(UsersCreate)),
    (Method::GET, "/api/users/{id}", Admin(UserGet)),
    (Method::PATCH, "/api/users/{id}", Admin(UserPatch)),
    (Method::DELETE, "/api/users/{id}", Admin(UserDelete)),
    (Method::GET, "/api/keys", User(KeysList)),
    (Method::POST, "/api/keys", User(KeysCreate)),
    (Method::GET, "/api/keys/{id}", User(KeyGet)),
    (Method::PATCH, "/api/keys/{id}", User(KeyPatch)),
    (Method::DELETE, "/api/keys/{id}", User(KeyDelete)),
    (Method::GET, "/api/channels", Admin(ChannelsList)),
    (Method::POST, "/api/channels", Admin(ChannelsCreate)),
    (Method::GET, "/api/channels/{id}", Admin(ChannelGet)),
    (Method::PATCH, "/api/channels/{id}", Admin(ChannelPatch)),
    (Method::DELETE, "/api/channels/{id}", Admin(ChannelDelete)),
    (Method::POST, "/api/channels/{id}/test", Admin(ChannelTest)),
    (Method::POST, "/api/channels/test", Admin(ChannelsTestAll)),
    (Method::GET, "/api/log", Admin(LogsList)),
    (Method::DELETE, "/api/log", Admin(LogsDelete)),
    (Method::GET, "/api/log/self", User(LogsSelf)),
    (Method::GET, "/api/log/stat", Admin(LogsStat)),
    (Method::GET, "/api/log/self/stat", User(LogsSelfStat)),
    (Method::GET, "/api/log/export", Admin(LogsExport)),
    (Method::GET, "/api/log/self/export", User(LogsSelfExport)),
    (Method::GET, "/api/models", User(ModelPrices)),
    (
        Method::POST,
        "/api/playground/chat/completions",
        Route::Playground,
    ),
    (Method::GET, "/api/dashboard", User(Dashboard)),
    (Method::GET, "/api/channels/stats", Admin(ChannelStats)),
    (
        Method::GET,
        "/api/me/notify/deliveries",
        User(OwnDeliveries),
    ),
    (Method::GET, "/api/usage", Admin(UsageAll)),
    (Method::GET, "/api/usage/self", User(UsageSelf)),
    (Method::GET, "/api/reconcile", Admin(Reconcile)),
    (Method::GET, "/api/anomalies", Admin(Anomalies)),
    (Method::GET, "/api/option", Admin(OptionsGet)),
    (Method::GET, "/api/option/export", Admin(OptionsExport)),
    (Method::PUT, "/api/option/import", Admin(OptionsImport)),
    (Method::PUT, "/api/option", Admin(OptionsPut)),
    (Method::GET, "/api/me/notify", User(NotifyGet)),
    (Method::PUT, "/api/me/notify", User(NotifyPut)),
    (Method::POST, "/api/me/notify/test", User(NotifyTest)),
    (
        Method::GET,
        "/api/notify/deliveries",
        Admin(NotifyDeliveries),
    ),
    (
        Method::POST,
        "/v1/chat/completions",
        ApiKey(ChatCompletions),
    ),
    (Method::POST, "/v1/completions", ApiKey(Completions)),
    (Method::POST, "/v1/messages", ApiKey(Messages)),
    (
        Method::POST,
        "/v1/messages/count_tokens",
        ApiKey(CountTokens),
    ),
    (Method::POST, "/v1/responses", ApiKey(Responses)),
    (Method::GET, "/v1/responses/{id}", ApiKey(StoredResponse)),
    (Method::DELETE, "/v1/responses/{id}", ApiKey(StoredResponse)),
    (Method::POST, "/v1/embeddings", ApiKey(Embeddings)),
    (Method::GET, "/v1/models", ApiKey(Models)),
    (
        Method::GET,
        "/dashboard/billing/subscription",
        ApiKey(BillingSubscription),
    ),
    (
        Method::GET,
        "/v1/dashboard/billing/subscription",
        ApiKey(BillingSubscription),
    ),
    (
        Method::GET,
        "/dashboard/billing/usage",
        ApiKey(BillingUsage),
    ),
    (
        Method::GET,
        "/v1/dashboard/billing/usage",
        ApiKey(BillingUsage),
    ),
];

pub struct Matched<'a> {
    pub route: Route,
    pub id: Option<&'a str>,
}

pub enum RouteResult<'a> {
    Found(Matched<'a>),
    /// The path exists; these methods are allowed on it.
    MethodNotAllowed(String),
    NotFound,
}

/// The handlers of one path, by method.
type MethodTable = Vec<(Method, Route)>;

pub struct Router {
    inner: matchit::Router<MethodTable>,
}

impl Router {
    pub fn new() -> Router {
        let mut by_path: Vec<(&str, MethodTable)> = Vec::new();
        for (m, p, r) in ROUTES {
            match by_path.iter_mut().find(|(path, _)| path == p) {
                Some((_, v)) => v.push((m.clone(), *r)),
                None => by_path.push((p, vec![(m.clone(), *r)])),
            }
        }
        let mut inner = matchit::Router::new();
        for (p, v) in by_path {
            // The table is static; a conflict is a programming error caught by the router test.
            if let Err(e) = inner.insert(p, v) {
                log::error!("route {p} conflicts: {e}");
            }
        }
        Router { inner }
    }

    /// True when `path` is a relay route (API-key access), whatever the method: only those
    /// answer CORS preflights.
    pub fn is_relay(&self, path: &str) -> bool {
        self.inner
            .at(path)
            .is_ok_and(|m| m.value.iter().any(|(_, r)| r.access() == Access::ApiKey))
    }

    pub fn route<'a>(&'a self, method: &Method, path: &'a str) -> RouteResult<'a> {
        let Ok(m) = self.inner.at(path) else {
            return RouteResult::NotFound;
        };
        let id = m.params.get("id");
        match m.value.iter().find(|(meth, _)| meth == method) {
            Some((_, r)) => RouteResult::Found(Matched { route: *r, id }),
            None => RouteResult::MethodNotAllowed(
                m.value
                    .iter()
                    .map(|(meth, _)| meth.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_reachable() {
        let r = Router::new();
        for (m, p, h) in ROUTES {
            let path = p.replace("{id}", "7");
            match r.route(m, &path) {
                RouteResult::Found(f) => assert_eq!(f.route, *h, "{m} {p}"),
                _ => panic!("{m} {p} does not route"),
            }
        }
    }

    #[test]
    fn only_listed_routes_are_public() {
        let public: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.2.access() == Access::Public)
            .map(|r| r.1)
            .collect();
        assert_eq!(
            public,
            [
                "/api/status",
                "/healthz",
                "/readyz",
                "/api/openapi.json",
                "/api/auth/login"
            ]
        );
    }
}
