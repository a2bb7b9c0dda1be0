//! The JSON API under `/api`: thin handlers that parse, authorise, call the store or domain
//! code, and serialise. One file per resource.

mod audit;
mod backup;
mod channels;
mod dashboard;
mod export;
mod key_locks;
mod keys;
mod listing;
mod logs;
mod models;
mod notify;
pub mod ops;
mod options;
mod params;
mod password;
mod session;
mod users;

use super::auth::Principal;
use super::router::{Api, Open};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::logs::{LogEntry, LogType};
use crate::store::users::UserRow;
use crate::web::{Resp, read_body};
use hyper::body::Incoming;
use std::net::IpAddr;
use std::sync::Arc;

/// Largest JSON body the admin API reads.
const MAX_API_BODY: usize = 1024 * 1024;

pub async fn public(
    state: &Arc<AppState>,
    handler: Open,
    req: http::Request<Incoming>,
    ip: IpAddr,
) -> Result<Resp, ApiError> {
    match handler {
        Open::Status => Ok(session::status(state)),
        Open::Healthz => Ok(ops::healthz()),
        Open::Readyz => Ok(ops::readyz(state)),
        Open::OpenApi => Ok(session::openapi()),
        Open::Login => session::login(state, req, ip).await,
    }
}

pub async fn signed_in(
    state: &Arc<AppState>,
    handler: Api,
    req: http::Request<Incoming>,
    p: Principal,
    id: Option<&str>,
    ip: IpAddr,
) -> Result<Resp, ApiError> {
    use Api::*;
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = read_body(req, MAX_API_BODY).await?;
    let raw_id = id;
    let id = || parse_id(raw_id);
    match handler {
        Logout => session::logout(state, &parts, &p).await,
        Me => Ok(session::me(state, &p).await),
        AccessToken => session::access_token(state, &p).await,
        AccessTokenRevoke => session::revoke_access_token(state, &p).await,
        MePassword => password::change_own(state, &p, &parts, &body, ip).await,
        UsersList => users::list(state, &query).await,
        UsersCreate => users::create(state, &p, &parts, &body).await,
        UserGet => users::get(state, id()?).await,
        UserPatch => users::patch(state, &p, id()?, &parts, &body).await,
        UserDelete => users::delete(state, &p, id()?).await,
        KeysList => keys::list(state, &p, &query).await,
        KeysCreate => keys::create(state, &p, &parts, &body).await,
        KeyGet => keys::get(state, &p, id()?).await,
        KeyPatch => keys::patch(state, &p, id()?, &parts, &body).await,
        KeyDelete => keys::delete(state, &p, id()?).await,
        ChannelsList => channels::list(state, &query).await,
        ChannelsCreate => channels::create(state, &p, &parts, &body).await,
        ChannelGet => channels::get(state, id()?).await,
        ChannelPatch => channels::patch(state, &p, id()?, &parts, &body).await,
        ChannelDelete => channels::delete(state, &p, id()?).await,
        ChannelTest => channels::test(state, id()?, &parts, &body).await,
        ChannelsTestAll => channels::test_all(state).await,
        OptionsGet => Ok(options::get(state)),
        Stats => Ok(ops::stats(state)),
        ProfilesList => ops::profiles(state).await,
        ProfilesStart => ops::profile_now(state, &p, &parts, &body).await,
        ProfileGet => ops::profile_file(state, raw_id.unwrap_or("")).await,
        LoggingGet => Ok(ops::logging()),
        LoggingPut => ops::set_logging(state, &p, &parts, &body).await,
        OptionsPut | OptionsImport => options::put(state, &p, &parts, &body).await,
        OptionsExport => options::export(state, &p, &query),
        LogsList => logs::search(state, &p, &query, false).await,
        LogsSelf => logs::search(state, &p, &query, true).await,
        LogsStat => logs::stat(state, &p, &query, false).await,
        LogsSelfStat => logs::stat(state, &p, &query, true).await,
        LogsDelete => logs::delete(state, &p, &query).await,
        LogsExport => export::csv(state, &p, &query, false).await,
        LogsSelfExport => export::csv(state, &p, &query, true).await,
        UsageAll => logs::usage(state, &p, &query, false).await,
        UsageSelf => logs::usage(state, &p, &query, true).await,
        Reconcile => audit::reconcile(state).await,
        Anomalies => audit::anomalies(state).await,
        BackupsList => backup::list(state).await,
        BackupsCreate => backup::create(state, &p).await,
        BackupGet => backup::download(state, &p, raw_id.unwrap_or("")).await,
        BackupHotCopy => backup::hot_copy(state, &p).await,
        NotifyGet => notify::get(state, &p).await,
        NotifyPut => notify::put(state, &p, &parts, &body).await,
        NotifyTest => notify::test(state, &p).await,
        NotifyDeliveries => notify::deliveries(state, &query, None).await,
        OwnDeliveries => notify::deliveries(state, &query, Some(p.user.id)).await,
        ModelPrices => Ok(models::list(state, &p)),
        Dashboard => dashboard::dashboard(state, &p, &query).await,
        ChannelStats => dashboard::channel_stats(state, &query).await,
    }
}

fn parse_id(id: Option<&str>) -> Result<i64, ApiError> {
    id.and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::BadRequest("the id in the path must be a positive whole number".into())
        })
}

/// A `manage` log row recording what an admin did.
fn manage_entry(actor: &UserRow, content: String) -> LogEntry {
    LogEntry {
        created_at: crate::util::now_secs(),
        log_type: LogType::Manage as i64,
        request_id: crate::logging::current_request_id(),
        user_id: Some(actor.id),
        username: Some(actor.username.clone()),
        content: Some(content),
        ..Default::default()
    }
}

/// Commits an admin change and its manage row in one transaction. The caller then refreshes
/// what it changed in the catalog ([`refresh`]).
async fn commit_change<T, F>(state: &AppState, log: LogEntry, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    let out = state
        .store
        .writer
        .exec(move |c| {
            let out = f(c)?;
            crate::store::logs::insert(c, &log)?;
            Ok(out)
        })
        .await?;
    Ok(out)
}

/// [`commit_change`] and a reload of the whole catalog: for a change that cascades.
async fn admin_change<T, F>(state: &AppState, log: LogEntry, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> Result<T, crate::store::StoreError> + Send + 'static,
{
    let out = commit_change(state, log, f).await?;
    refresh(state, Refresh::Everything).await;
    Ok(out)
}

/// [`commit_change`] for a change that the transaction itself may refuse, from what it reads
/// there (a lock, a name taken meanwhile): `f` returns `Ok(Err(refusal))` *before* it writes
/// anything, and then no manage row is written either. `f` may add to the row's text.
async fn commit_change_checked<T, F>(
    state: &AppState,
    mut log: LogEntry,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(
            &rusqlite::Connection,
            &mut LogEntry,
        ) -> Result<Result<T, ApiError>, crate::store::StoreError>
        + Send
        + 'static,
{
    let out = state
        .store
        .writer
        .exec(move |c| {
            let out = f(c, &mut log)?;
            if out.is_ok() {
                crate::store::logs::insert(c, &log)?;
            }
            Ok(out)
        })
        .await??;
    Ok(out)
}

/// What a committed change makes the catalog re-read: only what it touched, so a key create
/// at 9,000 keys does not re-read them all.
#[derive(Debug, Clone, Copy)]
enum Refresh {
    Key(i64),
    User(i64),
    Channels,
    Options,
    /// A change that cascades (a user deleted with their keys and sessions).
    Everything,
}

/// Refreshes the in-memory catalog after a committed change. A failure leaves the old snapshot
/// in place (logged); the change itself is already durable.
async fn refresh(state: &AppState, what: Refresh) {
    let c = &state.catalog;
    let done = match what {
        Refresh::Key(id) => c.refresh_key(id).await,
        Refresh::User(id) => c.refresh_user(id).await,
        Refresh::Channels => c.reload_channels().await,
        Refresh::Options => c.reload_options().await,
        Refresh::Everything => c.reload().await,
    };
    if let Err(e) = done {
        log::error!("refreshing the catalog ({what:?}) after an admin change failed: {e}");
    }
}
