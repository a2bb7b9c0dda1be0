//! `GET /api/models`: the models the caller's group can call, priced in the display currency.

use crate::auth::Principal;
use crate::billing::{Price, Usage, display};
use crate::state::AppState;
use crate::web::{Resp, json};
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const MILLION: u64 = 1_000_000;

pub fn list(state: &AppState, p: &Principal) -> Resp {
    let group = p.user.group.clone();
    let opts = state.catalog.options();
    let money = &opts.display;
    // Channels an admin turned off do not count; auto-disabled ones do (they come back).
    let names: BTreeSet<String> = state
        .catalog
        .channels()
        .iter()
        .filter(|c| c.enabled && c.groups.contains(&group))
        .flat_map(|c| c.models.iter().cloned())
        .collect();
    let items: Vec<Value> = names
        .iter()
        .filter_map(|m| {
            let price = opts.pricing.price(m, &group).ok()?;
            let mut item = match price {
                Price::PerCall { .. } => json!({
                    "model": m,
                    "billing": "per_call",
                    "input_per_1m": null,
                    "output_per_1m": null,
                    "per_call": display::show(price.quota(Usage::default()), money),
                    "cache_read_per_1m": null,
                    "cache_write_per_1m": null,
                }),
                Price::Ratio { .. } => {
                    let of = |prompt, completion| {
                        display::show(price.quota(Usage::new(prompt, completion)), money)
                    };
                    // A million input tokens all read from, or all written to, the cache.
                    let cached = |read: bool| {
                        let mut u = Usage::new(MILLION, 0);
                        if read {
                            u.cache_read = MILLION;
                        } else {
                            u.cache_write_5m = MILLION;
                        }
                        display::show(price.quota(u), money)
                    };
                    json!({
                        "model": m,
                        "billing": "tokens",
                        "input_per_1m": of(MILLION, 0),
                        "output_per_1m": of(0, MILLION),
                        "cache_read_per_1m": cached(true),
                        "cache_write_per_1m": cached(false),
                        "per_call": null,
                    })
                }
            };
            if p.is_admin() {
                let pr = &opts.pricing;
                item["model_ratio"] = json!(match price {
                    Price::Ratio { model_ratio, .. } => model_ratio,
                    Price::PerCall { .. } => 0.0,
                });
                item["completion_ratio"] =
                    json!(pr.completion_ratio.get(m).copied().unwrap_or(1.0));
                item["group_ratio"] = json!(pr.group_ratio.get(&group).copied().unwrap_or(1.0));
                item["model_price_usd"] = json!(pr.model_price.get(m));
                let cache = pr.cache(m);
                item["cache_read_ratio"] = json!(cache.read);
                item["cache_write_ratio"] = json!(cache.write_5m);
                item["cache_write_1h_ratio"] = json!(cache.write_1h);
                item["unpriced"] =
                    json!(!pr.model_ratio.contains_key(m) && !pr.model_price.contains_key(m));
            }
            Some(item)
        })
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "group": group,
            "currency": display::show(0, money).currency,
            "items": items,
        }),
    )
}
