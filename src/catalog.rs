//! In-memory copies of what the request path reads: keys, users, channels and prices.
//!
//! Each table is an immutable snapshot behind an `ArcSwap`: readers take a pointer without
//! locking; an admin change commits to SQLite and then refreshes what it changed — one key, one
//! user, the channels, the options, or (after a change that cascades) everything. Refreshes are
//! serialised by one mutex and read the database under it, so a later one always reflects every
//! earlier commit. Balances are not part of the snapshots: they live in `ledger::Account`s
//! that survive reloads (see the ledger's rules).

use crate::ledger::Account;
use crate::settings::Options;
use crate::store::channels::ChannelRow;
use crate::store::keys::KeyRow;
use crate::store::users::{Role, UserRow};
use crate::store::{self, Store, StoreError};
use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A key as the request path sees it.
#[derive(Debug)]
pub struct KeyEntry {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub models: Option<HashSet<String>>,
    /// `None` for unlimited keys.
    pub account: Option<Arc<Account>>,
    /// Per-minute limits set on the key; `None` = the option's default, 0 = unlimited.
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

#[derive(Debug)]
pub struct UserEntry {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub group: String,
    pub enabled: bool,
    pub account: Arc<Account>,
}

/// The key and user maps, each behind its own `Arc` so a change to one key copies the key
/// map's pointers (not its entries) and shares the user map untouched.
#[derive(Default, Clone)]
struct Snapshot {
    keys: Arc<HashMap<[u8; 32], Arc<KeyEntry>>>,
    users: Arc<HashMap<i64, Arc<UserEntry>>>,
}

pub struct Catalog {
    store: Store,
    snapshot: ArcSwap<Snapshot>,
    channels: ArcSwap<Vec<Arc<ChannelRow>>>,
    /// Shared with parts that read options from their own threads (the backup scheduler).
    options: Arc<ArcSwap<Options>>,
    /// Accounts by user id and by key id; kept across reloads so reservations stay valid.
    user_accounts: parking_lot::Mutex<HashMap<i64, Arc<Account>>>,
    key_accounts: parking_lot::Mutex<HashMap<i64, Arc<Account>>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// Loads everything from the database (start-up; blocking).
    pub fn load(store: Store) -> Result<Catalog, StoreError> {
        let c = Catalog {
            store,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            channels: ArcSwap::from_pointee(Vec::new()),
            options: Arc::new(ArcSwap::from_pointee(Options::default())),
            user_accounts: parking_lot::Mutex::new(HashMap::new()),
            key_accounts: parking_lot::Mutex::new(HashMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        };
        let data = c.store.read_blocking(read_all)?;
        c.install(data);
        Ok(c)
    }

    pub fn key(&self, digest: &[u8; 32]) -> Option<Arc<KeyEntry>> {
        self.snapshot.load().keys.get(digest).cloned()
    }

    pub fn user(&self, id: i64) -> Option<Arc<UserEntry>> {
        self.snapshot.load().users.get(&id).cloned()
    }

    pub fn channels(&self) -> Arc<Vec<Arc<ChannelRow>>> {
        self.channels.load_full()
    }

    /// The run-time settings (prices, timeouts, thresholds…); see [`crate::settings`].
    pub fn options(&self) -> Arc<Options> {
        self.options.load_full()
    }

    /// The live options cell itself, for a closure that must outlive a borrow of the catalog.
    pub fn options_cell(&self) -> Arc<ArcSwap<Options>> {
        self.options.clone()
    }

    pub fn user_account(&self, user_id: i64) -> Option<Arc<Account>> {
        self.user_accounts.lock().get(&user_id).cloned()
    }

    pub fn key_account(&self, key_id: i64) -> Option<Arc<Account>> {
        self.key_accounts.lock().get(&key_id).cloned()
    }

    /// Re-reads every table: after a change that cascades (a user deleted with their keys).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        let data = self.store.read(read_all).await?;
        self.install(data);
        Ok(())
    }

    /// Re-reads one key after a committed create, change or delete of it, and swaps in only
    /// that entry: a key create no longer re-reads every key, user, channel and option.
    pub async fn refresh_key(&self, id: i64) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        let row = self
            .store
            .read(move |c| found(store::keys::get(c, id)))
            .await?;
        let current = self.snapshot.load_full();
        let mut keys = HashMap::clone(&current.keys);
        // Found by id, since the digest of a deleted key is no longer known.
        keys.retain(|_, e| e.id != id);
        let mut key_accounts = self.key_accounts.lock();
        match row {
            Some(k) => {
                let entry = key_entry(k, &mut key_accounts);
                keys.insert(entry.0, entry.1);
            }
            None => {
                key_accounts.remove(&id);
            }
        }
        self.snapshot.store(Arc::new(Snapshot {
            keys: Arc::new(keys),
            users: current.users.clone(),
        }));
        Ok(())
    }

    /// Re-reads one user after a committed create or change of the account (not a delete,
    /// which takes the user's keys along: use [`Catalog::reload`]).
    pub async fn refresh_user(&self, id: i64) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        let row = self
            .store
            .read(move |c| found(store::users::get(c, id)))
            .await?;
        let current = self.snapshot.load_full();
        let mut users = HashMap::clone(&current.users);
        let mut user_accounts = self.user_accounts.lock();
        match row {
            Some(u) => {
                users.insert(id, user_entry(u, &mut user_accounts));
            }
            None => {
                users.remove(&id);
                user_accounts.remove(&id);
            }
        }
        self.snapshot.store(Arc::new(Snapshot {
            keys: current.keys.clone(),
            users: Arc::new(users),
        }));
        Ok(())
    }

    /// Re-reads the channels (a channel changed, or its health switched it off or on).
    pub async fn reload_channels(&self) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        let rows = self.store.read(store::channels::list).await?;
        self.channels
            .store(Arc::new(rows.into_iter().map(Arc::new).collect()));
        Ok(())
    }

    /// Re-reads the options after a change of them.
    pub async fn reload_options(&self) -> Result<(), StoreError> {
        let _guard = self.reload_lock.lock().await;
        let options = self.store.read(crate::settings::load).await?;
        self.options.store(Arc::new(options));
        Ok(())
    }

    fn install(&self, data: Loaded) {
        let mut user_accounts = self.user_accounts.lock();
        let mut key_accounts = self.key_accounts.lock();
        let mut users = HashMap::with_capacity(data.users.len());
        let mut seen_users = HashSet::new();
        for u in data.users {
            seen_users.insert(u.id);
            users.insert(u.id, user_entry(u, &mut user_accounts));
        }
        user_accounts.retain(|id, _| seen_users.contains(id));

        let mut keys = HashMap::with_capacity(data.keys.len());
        let mut seen_keys = HashSet::new();
        for k in data.keys {
            seen_keys.insert(k.id);
            let (digest, entry) = key_entry(k, &mut key_accounts);
            keys.insert(digest, entry);
        }
        key_accounts.retain(|id, _| seen_keys.contains(id));
        self.snapshot.store(Arc::new(Snapshot {
            keys: Arc::new(keys),
            users: Arc::new(users),
        }));
        self.channels
            .store(Arc::new(data.channels.into_iter().map(Arc::new).collect()));
        self.options.store(Arc::new(data.options));
    }
}

/// A row that may be gone: `None` instead of a not-found error.
fn found<T>(r: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn user_entry(u: UserRow, accounts: &mut HashMap<i64, Arc<Account>>) -> Arc<UserEntry> {
    let account = accounts
        .entry(u.id)
        .or_insert_with(|| Account::new(u.quota))
        .clone();
    Arc::new(UserEntry {
        id: u.id,
        username: u.username,
        role: u.role,
        group: u.group,
        enabled: u.enabled,
        account,
    })
}

/// The entry and its digest. Accounts exist for every key, so switching a key between
/// unlimited and limited keeps its balance tracked.
fn key_entry(k: KeyRow, accounts: &mut HashMap<i64, Arc<Account>>) -> ([u8; 32], Arc<KeyEntry>) {
    let account = accounts
        .entry(k.id)
        .or_insert_with(|| Account::new(k.remain_quota))
        .clone();
    (
        k.digest,
        Arc::new(KeyEntry {
            id: k.id,
            user_id: k.user_id,
            name: k.name,
            enabled: k.enabled,
            expires_at: k.expires_at,
            models: k.models.map(|m| m.into_iter().collect()),
            account: (!k.unlimited).then_some(account),
            rpm_limit: k.rpm_limit.map(|n| n.max(0) as u64),
            tpm_limit: k.tpm_limit.map(|n| n.max(0) as u64),
        }),
    )
}

struct Loaded {
    users: Vec<UserRow>,
    keys: Vec<KeyRow>,
    channels: Vec<ChannelRow>,
    options: Options,
}

fn read_all(conn: &rusqlite::Connection) -> Result<Loaded, StoreError> {
    Ok(Loaded {
        users: store::users::list(conn)?,
        keys: store::keys::list(conn, None)?,
        channels: store::channels::list(conn)?,
        options: crate::settings::load(conn)?,
    })
}
