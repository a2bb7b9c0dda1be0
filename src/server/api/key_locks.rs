//! Who may change what on an API key. A key's owner manages the settings they chose; a setting
//! an admin chose on another account's key (a quota, a limit, an expiry, the model list, a
//! disable) is locked against the owner, who can still make the key stricter by disabling it,
//! rename it or delete it. Admins see the locks (`admin_locked`) and can lift them.

use crate::error::ApiError;
use crate::store::keys::{KeyField, KeyPatch, Locks};

/// The lockable settings a change touches: the patch's fields, plus the quota when it is set.
fn touched(patch: &KeyPatch, quota: Option<i64>) -> Locks {
    let mut t = patch.touched();
    if quota.is_some() {
        t.insert(KeyField::Quota);
    }
    t
}

/// Refuses an owner's change to a setting an admin locked. Disabling is always allowed: it
/// only takes power away from the key.
pub fn check_owner_change(
    locked: &Locks,
    patch: &KeyPatch,
    quota: Option<i64>,
) -> Result<(), ApiError> {
    let mut wanted = touched(patch, quota);
    if patch.enabled == Some(false) {
        wanted.remove(&KeyField::Enabled);
    }
    let refused: Vec<&str> = wanted.intersection(locked).map(|f| f.as_str()).collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "{} {} set by an admin: only an admin can change {} (you can still rename, disable or delete the key)",
        refused.join(", "),
        if refused.len() == 1 { "was" } else { "were" },
        if refused.len() == 1 { "it" } else { "them" },
    )))
}

/// The locks after an admin changed another account's key: each setting the admin set becomes
/// locked, unless the admin gave the set of locks outright (`admin_locked`, e.g. `[]` to hand
/// every setting back to the owner).
pub fn after_admin_change(
    current: &Locks,
    patch: &KeyPatch,
    quota: Option<i64>,
    explicit: Option<Locks>,
) -> Locks {
    explicit.unwrap_or_else(|| current.union(&touched(patch, quota)).copied().collect())
}

/// The locks of a key an admin creates for another account: everything the admin chose.
pub fn on_create(models: bool, expires_at: bool, rpm_limit: bool, tpm_limit: bool) -> Locks {
    let mut l = Locks::from([KeyField::Quota]);
    for (set, f) in [
        (models, KeyField::Models),
        (expires_at, KeyField::ExpiresAt),
        (rpm_limit, KeyField::RpmLimit),
        (tpm_limit, KeyField::TpmLimit),
    ] {
        if set {
            l.insert(f);
        }
    }
    l
}

/// `quota, rpm_limit` for a manage row.
pub fn describe(l: &Locks) -> String {
    if l.is_empty() {
        return "none".into();
    }
    l.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: serde_json::Value) -> KeyPatch {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn owners_cannot_loosen_locked_settings_but_may_disable() {
        let locked = Locks::from([KeyField::Enabled, KeyField::Quota, KeyField::RpmLimit]);
        for (body, quota) in [
            (serde_json::json!({"enabled": true}), None),
            (serde_json::json!({"unlimited": true}), None),
            (serde_json::json!({}), Some(10)),
            (serde_json::json!({"rpm_limit": null}), None),
            (serde_json::json!({"rpm_limit": 0}), None),
        ] {
            let e = check_owner_change(&locked, &patch(body.clone()), quota).unwrap_err();
            assert!(e.to_string().contains("set by an admin"), "{body}: {e}");
        }
        for (body, quota) in [
            (serde_json::json!({"enabled": false}), None),
            (
                serde_json::json!({"name": "x", "tpm_limit": 5, "models": ["m"]}),
                None,
            ),
        ] {
            check_owner_change(&locked, &patch(body), quota).unwrap();
        }
        let e = check_owner_change(
            &locked,
            &patch(serde_json::json!({"rpm_limit": 1, "unlimited": false})),
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("quota, rpm_limit were set"),
            "{e}"
        );
    }

    #[test]
    fn admin_changes_lock_what_they_set_unless_told_otherwise() {
        let current = Locks::from([KeyField::Models]);
        let p = patch(serde_json::json!({"tpm_limit": 5, "name": "n"}));
        assert_eq!(
            after_admin_change(&current, &p, Some(1), None),
            Locks::from([KeyField::Models, KeyField::Quota, KeyField::TpmLimit])
        );
        assert!(after_admin_change(&current, &p, None, Some(Locks::new())).is_empty());
        assert_eq!(
            on_create(true, false, false, true),
            Locks::from([KeyField::Quota, KeyField::Models, KeyField::TpmLimit])
        );
    }
}
