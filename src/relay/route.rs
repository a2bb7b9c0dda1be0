//! Channel selection: routable channels (on, and not turned off by the health checks) that
//! serve the model in the caller's group, highest priority first, weighted random order inside
//! a priority.

use crate::error::ApiError;
use crate::store::channels::ChannelRow;
use rand::Rng;
use std::sync::Arc;

/// The channels to try, in order, at most `limit` of them.
pub fn candidates(
    channels: &[Arc<ChannelRow>],
    model: &str,
    group: &str,
    limit: usize,
) -> Vec<Arc<ChannelRow>> {
    let mut eligible: Vec<&Arc<ChannelRow>> = channels
        .iter()
        .filter(|c| eligible(c, model, group))
        .collect();
    eligible.sort_by_key(|c| std::cmp::Reverse(c.priority));
    let mut out = Vec::with_capacity(eligible.len().min(limit));
    let mut rng = rand::rng();
    let mut i = 0;
    while i < eligible.len() && out.len() < limit {
        let tier_end = eligible[i..]
            .iter()
            .position(|c| c.priority != eligible[i].priority)
            .map_or(eligible.len(), |p| i + p);
        let mut tier: Vec<&Arc<ChannelRow>> = eligible[i..tier_end].to_vec();
        // Weighted draw without replacement; weight 0 channels come last, as a fallback.
        while !tier.is_empty() && out.len() < limit {
            let total: i64 = tier.iter().map(|c| c.weight.max(0)).sum();
            let pick = if total == 0 {
                0
            } else {
                let mut r = rng.random_range(0..total);
                tier.iter()
                    .position(|c| {
                        r -= c.weight.max(0);
                        r < 0
                    })
                    .unwrap_or(0)
            };
            out.push(Arc::clone(tier.remove(pick)));
        }
        i = tier_end;
    }
    out
}

/// May a call for `model` from a caller in `group` go to this channel now?
fn eligible(c: &ChannelRow, model: &str, group: &str) -> bool {
    c.routable() && serves(c, model) && c.groups.iter().any(|g| g == group)
}

/// Checked before the price: a model that nothing serves is the client's mistake (OpenAI's
/// 404 `model_not_found`), not a missing price (which only matters for a model that is served).
pub fn ensure_served(
    channels: &[Arc<ChannelRow>],
    model: &str,
    group: &str,
) -> Result<(), ApiError> {
    if channels.iter().any(|c| eligible(c, model, group)) {
        Ok(())
    } else {
        Err(model_not_found(model))
    }
}

/// The one error for a model no channel serves to the caller; every client format renders it
/// (OpenAI's shape here, code `model_not_found`).
pub fn model_not_found(model: &str) -> ApiError {
    ApiError::ModelNotFound(format!(
        "the model {model:?} does not exist or you do not have access to it: no channel serves it for your group; ask an admin to add one"
    ))
}

/// Does the channel serve `model` (by name, or by a mapping from that name)?
pub fn serves(c: &ChannelRow, model: &str) -> bool {
    c.models.iter().any(|m| m == model) || c.model_mapping.contains_key(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::store::channels::ChannelFields;

    fn ch(
        id: i64,
        priority: i64,
        weight: i64,
        models: &[&str],
        groups: &[&str],
    ) -> Arc<ChannelRow> {
        Arc::new(ChannelRow::new(
            id,
            0,
            ChannelFields {
                kind: "openai".into(),
                name: format!("c{id}"),
                base_url: "http://x/v1".into(),
                api_key: Secret::new("k"),
                models: models.iter().map(|s| s.to_string()).collect(),
                model_mapping: Default::default(),
                groups: groups.iter().map(|s| s.to_string()).collect(),
                priority,
                weight,
                enabled: true,
                test_model: None,
                settings: Default::default(),
            },
            Default::default(),
        ))
    }

    #[test]
    fn higher_priority_first_and_filters_apply() {
        let cs = vec![
            ch(1, 0, 1, &["m"], &["default"]),
            ch(2, 10, 1, &["m"], &["default"]),
            ch(3, 10, 1, &["other"], &["default"]),
            ch(4, 20, 1, &["m"], &["vip"]),
        ];
        let got: Vec<i64> = candidates(&cs, "m", "default", 5)
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, vec![2, 1]);
        assert_eq!(candidates(&cs, "m", "default", 1).len(), 1);
        assert!(candidates(&cs, "nope", "default", 5).is_empty());
    }

    #[test]
    fn weights_shape_the_first_pick() {
        let cs = vec![
            ch(1, 0, 9, &["m"], &["default"]),
            ch(2, 0, 1, &["m"], &["default"]),
        ];
        let mut first = [0u32; 3];
        for _ in 0..2000 {
            first[candidates(&cs, "m", "default", 2)[0].id as usize] += 1;
        }
        assert!(first[1] > 1500 && first[2] > 80, "{first:?}");
        let zero = vec![
            ch(1, 0, 0, &["m"], &["default"]),
            ch(2, 0, 1, &["m"], &["default"]),
        ];
        for _ in 0..100 {
            assert_eq!(candidates(&zero, "m", "default", 2)[0].id, 2);
        }
    }
}
