//! Synthetic traffic for measuring log queries (`sluice gen-logs`, the log-search tests).
//!
//! Rows go through the store functions that write a call at once (`record_charge`, `insert`;
//! real traffic's journal rows fold into exactly those rows, rollups and balances, as a test in
//! `journal` holds), so rollups, balances and top-up rows are all consistent and `sluice
//! reconcile` passes on the result. Users, keys, models and channels follow a plausible shape: each key sticks to two
//! models, each model to one or two channels, 2% of calls fail, and timestamps are spread evenly
//! over the last `days` days, in order.

use crate::store::keys::NewKey;
use crate::store::logs::{self, LogEntry, LogType};
use crate::store::users::{NewUser, Role};
use crate::store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct Spec {
    pub rows: u64,
    pub days: u32,
    pub users: u32,
    pub keys_per_user: u32,
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            rows: 100_000,
            days: 30,
            users: 50,
            keys_per_user: 2,
            seed: 1,
        }
    }
}

const MODELS: &[&str] = &[
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "claude-sonnet",
    "text-embedding-3-small",
    "deepseek-chat",
];
const CHANNELS: i64 = 6;
/// Rows per writer transaction.
const BATCH: u64 = 10_000;
/// Each synthetic user's opening balance: more than any run can spend.
const OPENING: i64 = 1_000_000_000_000;

struct Key {
    id: i64,
    user_id: i64,
    username: String,
    name: String,
    group: &'static str,
    limited: bool,
    models: [usize; 2],
}

/// Writes the accounts and `spec.rows` log rows; blocking (call it off the async threads).
pub fn generate(
    store: &Store,
    spec: &Spec,
    mut progress: impl FnMut(u64),
) -> Result<(), StoreError> {
    let now = crate::util::now_secs();
    let start = now - i64::from(spec.days) * 86_400;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let (users, keys_per_user) = (spec.users.max(1), spec.keys_per_user.max(1));
    let model_picks: Vec<[usize; 2]> = (0..users * keys_per_user)
        .map(|_| {
            let a = rng.random_range(0..MODELS.len());
            [a, (a + rng.random_range(1..MODELS.len())) % MODELS.len()]
        })
        .collect();
    let tag = format!("{:x}", rng.random::<u32>());
    let keys: Vec<Key> = store.writer.exec_blocking(move |c| {
        let by = LogEntry {
            created_at: start,
            request_id: "gen-logs".into(),
            username: Some("gen-logs".into()),
            ..Default::default()
        };
        let mut keys = Vec::new();
        for u in 0..users {
            let username = format!("gen-{tag}-user-{u}");
            let group = if u % 5 == 0 { "vip" } else { "default" };
            let user_id = crate::store::users::insert(
                c,
                &NewUser {
                    username: &username,
                    // Not an argon2 hash: nobody can sign in as a synthetic user.
                    password_hash: "!",
                    role: Role::User,
                    group,
                    quota: OPENING,
                    created_at: start,
                },
            )?;
            logs::record_topup(c, &by, user_id, None, OPENING)?;
            for k in 0..keys_per_user {
                let name = format!("key-{k}");
                let limited = k % 2 == 1;
                let digest = crate::util::digest(&format!("gen-{tag}-{u}-{k}"));
                let id = crate::store::keys::insert(
                    c,
                    &NewKey {
                        user_id,
                        name: &name,
                        digest,
                        prefix: "sk-gen",
                        unlimited: !limited,
                        remain_quota: if limited { OPENING } else { 0 },
                        expires_at: None,
                        models: None,
                        created_at: start,
                        rpm_limit: None,
                        tpm_limit: None,
                        admin_locked: &Default::default(),
                    },
                )?;
                if limited {
                    logs::record_topup(c, &by, user_id, Some(id), OPENING)?;
                }
                keys.push(Key {
                    id,
                    user_id,
                    username: username.clone(),
                    name,
                    group,
                    limited,
                    models: model_picks[(u * keys_per_user + k) as usize],
                });
            }
        }
        Ok(keys)
    })?;
    let keys = std::sync::Arc::new(keys);
    let span = (now - start).max(1) as f64;
    let mut written = 0u64;
    while written < spec.rows {
        let n = BATCH.min(spec.rows - written);
        let mut batch = Vec::with_capacity(n as usize);
        for i in written..written + n {
            let created_at = start + (span * i as f64 / spec.rows as f64) as i64;
            let k = rng.random_range(0..keys.len());
            let model = keys[k].models[rng.random_range(0..2)];
            let channel =
                (model as i64 % CHANNELS) + 1 + rng.random_range(0..2) % 2 * (model as i64 % 2);
            let failed = rng.random_range(0..100) < 2;
            let prompt: i64 = rng.random_range(10..2_000);
            let completion: i64 = if failed { 0 } else { rng.random_range(1..800) };
            let latency = rng.random_range(200..4_000) + if channel == 3 { 1_500 } else { 0 };
            let rid = ulid::Ulid::from_parts((created_at as u64) * 1000, rng.random()).to_string();
            batch.push((
                k, model, channel, failed, prompt, completion, latency, created_at, rid,
            ));
        }
        let keys = keys.clone();
        store.writer.exec_blocking(move |c| {
            for (k, model, channel, failed, prompt, completion, latency, created_at, rid) in batch {
                let key = &keys[k];
                let mut e = LogEntry {
                    created_at,
                    log_type: if failed {
                        LogType::Error
                    } else {
                        LogType::Consume
                    } as i64,
                    request_id: rid,
                    user_id: Some(key.user_id),
                    username: Some(key.username.clone()),
                    key_id: Some(key.id),
                    key_name: Some(key.name.clone()),
                    channel_id: Some(channel),
                    group: Some(key.group.to_string()),
                    model: Some(MODELS[model].to_string()),
                    upstream_model: Some(MODELS[model].to_string()),
                    latency_ms: Some(latency),
                    is_stream: created_at % 3 == 0,
                    ..Default::default()
                };
                if failed {
                    e.status = Some(if created_at % 2 == 0 { 502 } else { 429 });
                    e.content = Some("upstream error (synthetic)".into());
                    logs::insert(c, &e)?;
                } else {
                    e.status = Some(200);
                    e.prompt_tokens = prompt;
                    e.completion_tokens = completion;
                    e.quota = prompt + completion * 2;
                    e.ttfb_ms = Some(latency / 3);
                    e.usage_source = Some("upstream".into());
                    let quota = e.quota;
                    logs::record_charge(c, key.user_id, key.id, key.limited, quota, e)?;
                }
            }
            Ok(())
        })?;
        written += n;
        progress(written);
    }
    Ok(())
}
