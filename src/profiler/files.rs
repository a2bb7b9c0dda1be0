//! The profile files: names, listing and pruning.

use super::*;

/// Checks a profile name: exactly `cpu-YYYYMMDD-HHMMSS`, a real date. Returns its Unix time.
pub(super) fn check_name(name: &str) -> Result<i64, ProfileError> {
    parse_name(name).ok_or_else(|| {
        ProfileError::Invalid("a profile name looks like cpu-YYYYMMDD-HHMMSS".into())
    })
}

pub(super) fn parse_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    let shape = b.len() == 19
        && name.starts_with("cpu-")
        && b[12] == b'-'
        && b[4..12].iter().all(u8::is_ascii_digit)
        && b[13..19].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    chrono::NaiveDateTime::parse_from_str(&name[4..], NAME_FORMAT)
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The profile file kinds we write and delete. `json` is the sidecar.
pub(super) const OUR_EXTS: [&str; 3] = ["pb", "svg", "json"];

/// Our files in `dir`: (profile name, file name). Leftover temporaries come back with
/// `tmp == true`.
pub(super) fn our_files(dir: &Path) -> io::Result<Vec<(String, String, bool)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        let (core, tmp) = match file.strip_prefix('.').and_then(|f| f.strip_suffix(".tmp")) {
            Some(core) => (core.to_string(), true),
            None => (file.clone(), false),
        };
        let Some((name, ext)) = core.rsplit_once('.') else {
            continue;
        };
        if OUR_EXTS.contains(&ext) && parse_name(name).is_some() {
            out.push((name.to_string(), file, tmp));
        }
    }
    Ok(out)
}

/// Keeps the newest `keep` profiles (by the time in their name; a profile = its `.pb`, `.svg`
/// and `.json`), deletes the rest and stale temporaries. Touches no other file. Returns how many
/// files it deleted.
pub(super) fn prune(dir: &Path, keep: usize) -> io::Result<usize> {
    let files = our_files(dir)?;
    let mut names: Vec<&str> = files
        .iter()
        .filter(|f| !f.2)
        .map(|f| f.0.as_str())
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    names.dedup();
    let keep_names: Vec<&str> = names.into_iter().take(keep).collect();
    let mut deleted = 0;
    for (name, file, tmp) in &files {
        if *tmp || !keep_names.contains(&name.as_str()) {
            match fs::remove_file(dir.join(file)) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if deleted > 0 {
        log::info!(
            "CPU profiler: pruned {deleted} old profile file(s) in {}",
            dir.display()
        );
    }
    Ok(deleted)
}

pub(super) fn list_dir(dir: &Path) -> Result<Vec<ProfileInfo>, ProfileError> {
    let files = match our_files(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let size = |name: &str, ext: &str| -> u64 {
        fs::metadata(dir.join(format!("{name}.{ext}")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let mut out: Vec<ProfileInfo> = files
        .iter()
        .filter(|(_, file, tmp)| !tmp && file.ends_with(".pb"))
        .filter_map(|(name, _, _)| {
            let created = parse_name(name)?;
            let trigger = fs::read(dir.join(format!("{name}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
                .map_or(Trigger::Manual, |s| s.trigger);
            Some(ProfileInfo {
                name: name.clone(),
                created,
                pb_bytes: size(name, "pb"),
                svg_bytes: size(name, "svg"),
                trigger,
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}
