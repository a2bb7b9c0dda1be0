//! Every route in one table. Authentication is on by default: a route is public only when
//! its row says `Public`.

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Status,
    Healthz,
    Readyz,
    Metrics,
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
    OpenApi,
    Login,
    Logout,
    Me,
    AccessToken,
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
    Playground,
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
    ChatCompletions,
    Completions,
    Embeddings,
    Models,
    BillingSubscription,
    BillingUsage,
}

use Access::*;
use Handler::*;

/// (method, path, handler, access). `/api` rows must appear in `openapi.json` (a test checks).
pub const ROUTES: &[(Method, &str, Handler, Access)] = &[
    (Method::GET, "/api/status", Status, Public),
    (Method::GET, "/healthz", Healthz, Public),
    (Method::GET, "/readyz", Readyz, Public),
    (Method::GET, "/metrics", Handler::Metrics, Access::Metrics),
    (Method::GET, "/api/stats", Stats, Admin),
    (Method::GET, "/api/profiles", ProfilesList, Admin),
    (Method::POST, "/api/profiles", ProfilesStart, Admin),
    (Method::GET, "/api/profiles/{id}", ProfileGet, Admin),
    (Method::GET, "/api/logging", LoggingGet, Admin),
    (Method::PUT, "/api/logging", LoggingPut, Admin),
    (Method::GET, "/api/backups", BackupsList, Admin),
    (Method::POST, "/api/backups", BackupsCreate, Admin),
    (Method::GET, "/api/backups/{id}", BackupGet, Root),
    (Method::GET, "/api/backup/hot-copy", BackupHotCopy, Root),
    (Method::GET, "/api/openapi.json", OpenApi, Public),
    (Method::POST, "/api/auth/login", Login, Public),
    (Method::POST, "/api/auth/logout", Logout, User),
    (Method::GET, "/api/me", Me, User),
    (Method::POST, "/api/me/access-token", AccessToken, User),
    (Method::POST, "/api/me/password", MePassword, User),
    (Method::GET, "/api/users", UsersList, Admin),
    (Method::POST, "/api/users", UsersCreate, Admin),
    (Method::GET, "/api/users/{id}", UserGet, Admin),
    (Method::PATCH, "/api/users/{id}", UserPatch, Admin),
    (Method::DELETE, "/api/users/{id}", UserDelete, Admin),
    (Method::GET, "/api/keys", KeysList, User),
    (Method::POST, "/api/keys", KeysCreate, User),
    (Method::GET, "/api/keys/{id}", KeyGet, User),
    (Method::PATCH, "/api/keys/{id}", KeyPatch, User),
    (Method::DELETE, "/api/keys/{id}", KeyDelete, User),
    (Method::GET, "/api/channels", ChannelsList, Admin),
    (Method::POST, "/api/channels", ChannelsCreate, Admin),
    (Method::GET, "/api/channels/{id}", ChannelGet, Admin),
    (Method::PATCH, "/api/channels/{id}", ChannelPatch, Admin),
    (Method::DELETE, "/api/channels/{id}", ChannelDelete, Admin),
    (Method::POST, "/api/channels/{id}/test", ChannelTest, Admin),
    (Method::POST, "/api/channels/test", ChannelsTestAll, Admin),
    (Method::GET, "/api/log", LogsList, Admin),
    (Method::DELETE, "/api/log", LogsDelete, Admin),
    (Method::GET, "/api/log/self", LogsSelf, User),
    (Method::GET, "/api/log/stat", LogsStat, Admin),
    (Method::GET, "/api/log/self/stat", LogsSelfStat, User),
    (Method::GET, "/api/log/export", LogsExport, Admin),
    (Method::GET, "/api/log/self/export", LogsSelfExport, User),
    (Method::GET, "/api/models", ModelPrices, User),
    (
        Method::POST,
        "/api/playground/chat/completions",
        Playground,
        User,
    ),
    (Method::GET, "/api/dashboard", Dashboard, User),
    (Method::GET, "/api/channels/stats", ChannelStats, Admin),
    (
        Method::GET,
        "/api/me/notify/deliveries",
        OwnDeliveries,
        User,
    ),
    (Method::GET, "/api/usage", UsageAll, Admin),
    (Method::GET, "/api/usage/self", UsageSelf, User),
    (Method::GET, "/api/reconcile", Reconcile, Admin),
    (Method::GET, "/api/anomalies", Anomalies, Admin),
    (Method::GET, "/api/option", OptionsGet, Admin),
    (Method::GET, "/api/option/export", OptionsExport, Admin),
    (Method::PUT, "/api/option/import", OptionsImport, Admin),
    (Method::PUT, "/api/option", OptionsPut, Admin),
    (Method::GET, "/api/me/notify", NotifyGet, User),
    (Method::PUT, "/api/me/notify", NotifyPut, User),
    (Method::POST, "/api/me/notify/test", NotifyTest, User),
    (
        Method::GET,
        "/api/notify/deliveries",
        NotifyDeliveries,
        Admin,
    ),
    (
        Method::POST,
        "/v1/chat/completions",
        ChatCompletions,
        ApiKey,
    ),
    (Method::POST, "/v1/completions", Completions, ApiKey),
    (Method::POST, "/v1/embeddings", Embeddings, ApiKey),
    (Method::GET, "/v1/models", Models, ApiKey),
    (
        Method::GET,
        "/dashboard/billing/subscription",
        BillingSubscription,
        ApiKey,
    ),
    (
        Method::GET,
        "/v1/dashboard/billing/subscription",
        BillingSubscription,
        ApiKey,
    ),
    (
        Method::GET,
        "/dashboard/billing/usage",
        BillingUsage,
        ApiKey,
    ),
    (
        Method::GET,
        "/v1/dashboard/billing/usage",
        BillingUsage,
        ApiKey,
    ),
];

pub struct Matched<'a> {
    pub handler: Handler,
    pub access: Access,
    pub id: Option<&'a str>,
}

pub enum RouteResult<'a> {
    Found(Matched<'a>),
    /// The path exists; these methods are allowed on it.
    MethodNotAllowed(String),
    NotFound,
}

/// The handlers of one path, by method.
type MethodTable = Vec<(Method, Handler, Access)>;

pub struct Router {
    inner: matchit::Router<MethodTable>,
}

impl Router {
    pub fn new() -> Router {
        let mut by_path: Vec<(&str, MethodTable)> = Vec::new();
        for (m, p, h, a) in ROUTES {
            match by_path.iter_mut().find(|(path, _)| path == p) {
                Some((_, v)) => v.push((m.clone(), *h, *a)),
                None => by_path.push((p, vec![(m.clone(), *h, *a)])),
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
            .is_ok_and(|m| m.value.iter().any(|(_, _, a)| *a == Access::ApiKey))
    }

    pub fn route<'a>(&'a self, method: &Method, path: &'a str) -> RouteResult<'a> {
        let Ok(m) = self.inner.at(path) else {
            return RouteResult::NotFound;
        };
        let id = m.params.get("id");
        match m.value.iter().find(|(meth, _, _)| meth == method) {
            Some((_, h, a)) => RouteResult::Found(Matched {
                handler: *h,
                access: *a,
                id,
            }),
            None => RouteResult::MethodNotAllowed(
                m.value
                    .iter()
                    .map(|(meth, _, _)| meth.as_str())
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
        for (m, p, h, _) in ROUTES {
            let path = p.replace("{id}", "7");
            match r.route(m, &path) {
                RouteResult::Found(f) => assert_eq!(f.handler, *h, "{m} {p}"),
                _ => panic!("{m} {p} does not route"),
            }
        }
    }

    #[test]
    fn only_listed_routes_are_public() {
        let public: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.3 == Access::Public)
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
