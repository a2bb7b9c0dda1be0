use super::*;

#[test]
fn layers_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:4000\"\ndata_dir = \"/x\"\n").unwrap();
    let env = vec![("SLUICE_DATA_DIR".to_string(), "/y".to_string())];
    let flags = Overrides {
        listen: Some("127.0.0.1:5000".parse().unwrap()),
        ..Default::default()
    };
    let c = Config::load(Some(&file), env, &flags).unwrap();
    assert_eq!(c.listen.port(), 5000);
    assert_eq!(c.data_dir, PathBuf::from("/y"));
    assert_eq!(c.database_path(), PathBuf::from("/y/sluice.db"));
}

#[test]
fn defaults_match_the_documented_ones() {
    let c = Config::load(None, Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.database_path(), PathBuf::from("./data/sluice.db"));
}

#[test]
fn errors_say_how_to_fix() {
    let env = vec![("SLUICE_LISTEN".to_string(), "nonsense".to_string())];
    let e = Config::load(None, env, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("IP:PORT"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "lisen = 1").unwrap();
    let e = Config::load(Some(&file), Vec::new(), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("lisen"), "{e}");
    // Run-time settings moved to the option registry: the old section is refused with a
    // pointer to where it went.
    std::fs::write(&file, "[relay]\nretries = 3\n").unwrap();
    let e = Config::load(Some(&file), Vec::new(), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/api/option"), "{e}");
}

#[test]
fn log_section_env_and_validation() {
    let c = Config::load(None, Vec::new(), &Overrides::default()).unwrap();
    assert_eq!(c.log_dir(), Some(PathBuf::from("./data/logs")));
    let env = vec![
        ("SLUICE_LOG_DIR".to_string(), "/var/log/sluice".to_string()),
        ("SLUICE_LOG_KEEP".to_string(), "3".to_string()),
    ];
    let c = Config::load(None, env, &Overrides::default()).unwrap();
    assert_eq!(c.log_dir(), Some(PathBuf::from("/var/log/sluice")));
    assert_eq!(c.log.keep, 3);
    let env = vec![("SLUICE_LOG_FILES".to_string(), "false".to_string())];
    let c = Config::load(None, env, &Overrides::default()).unwrap();
    assert_eq!(c.log_dir(), None);

    let bad = |env: Vec<(&str, &str)>, toml: &str, want: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).unwrap();
        let env = env.into_iter().map(|(a, b)| (a.to_string(), b.to_string()));
        let e = Config::load(Some(&file), env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    };
    bad(vec![("SLUICE_LOG_KEEP", "0")], "", "log.files = false");
    bad(vec![("SLUICE_LOG_KEEP", "many")], "", "whole number");
    bad(vec![("SLUICE_LOG_FILES", "yes")], "", "true or false");
    bad(vec![], "[log]\nmax_lines = 10\n", "at least 1000");
    bad(vec![], "[log]\nmax_bytes = 1000\n", "at least 1048576");
    bad(vec![], "[log]\nrotate = 1\n", "rotate");
}

#[test]
fn summary_shows_settings_but_no_secret() {
    let env = vec![
        (
            "SLUICE_ROOT_PASSWORD".to_string(),
            "hunter2-very-secret".to_string(),
        ),
        ("SLUICE_TRUSTED_PROXIES".to_string(), "10.0.0.1".to_string()),
    ];
    let c = Config::load(None, env, &Overrides::default()).unwrap();
    let s = c.summary();
    assert!(!s.contains("hunter2"), "{s}");
    assert!(!s.contains('\n'), "{s}");
    for want in [
        "listen=127.0.0.1:3000",
        "root_password=set",
        "trusted_proxies=[10.0.0.1]",
        "log_dir=\"./data/logs\"",
        "log_keep=10",
    ] {
        assert!(s.contains(want), "{want} not in {s}");
    }
    let c = Config::load(
        None,
        vec![("SLUICE_LOG_FILES".to_string(), "false".to_string())],
        &Overrides::default(),
    )
    .unwrap();
    assert!(c.summary().contains("log_files=off"));
    assert!(c.summary().contains("root_password=unset"));
}

/// The shipped example must parse and equal the built-in defaults, so the two cannot drift;
/// only the two directories differ: they are the ones the systemd unit makes writable
/// (StateDirectory=, LogsDirectory=).
#[test]
fn packaged_example_matches_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sluice.toml");
    let c = Config::load(Some(&path), Vec::new(), &Overrides::default()).unwrap();
    let d = Config::default();
    assert_eq!(c.listen, d.listen);
    assert_eq!(c.data_dir, Path::new("/var/lib/sluice"));
    assert_eq!(c.shutdown_grace_secs, d.shutdown_grace_secs);
    assert_eq!(
        (
            c.header_read_timeout_secs,
            c.keep_alive_timeout_secs,
            c.max_connections,
            c.max_connections_per_address
        ),
        (
            d.header_read_timeout_secs,
            d.keep_alive_timeout_secs,
            d.max_connections,
            d.max_connections_per_address
        )
    );
    let (a, b) = (&c.log, &d.log);
    assert_eq!(a.dir.as_deref(), Some(Path::new("/var/log/sluice")));
    assert_eq!(
        (a.files, a.max_lines, a.max_bytes, a.keep),
        (b.files, b.max_lines, b.max_bytes, b.keep)
    );
}
