use super::*;
use pprof::protos::Message as _;

/// pprof is process-global: tests that record take turns.
static RECORD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(dir: &Path) -> ProfilerConfig {
    ProfilerConfig {
        enabled: true,
        interval: Duration::from_millis(100),
        threshold_percent: 0.0,
        duration: Duration::from_secs(1),
        cooldown: Duration::from_secs(3600),
        keep: 5,
        frequency_hz: 199,
        dir: dir.to_path_buf(),
    }
}

/// Burns one core until dropped.
struct Burner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Burner {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut x: u64 = 1;
            while !flag.load(Ordering::Relaxed) {
                for i in 0..10_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
            }
            x
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn default_config_is_valid_and_bad_values_say_how_to_fix() {
    assert_eq!(ProfilerConfig::default().validate(), Ok(()));
    let bad = [
        ProfilerConfig {
            interval: Duration::ZERO,
            ..Default::default()
        },
        ProfilerConfig {
            threshold_percent: 120.0,
            ..Default::default()
        },
        ProfilerConfig {
            threshold_percent: f64::NAN,
            ..Default::default()
        },
        ProfilerConfig {
            duration: Duration::from_millis(10),
            ..Default::default()
        },
        ProfilerConfig {
            keep: 0,
            ..Default::default()
        },
        ProfilerConfig {
            frequency_hz: 0,
            ..Default::default()
        },
        ProfilerConfig {
            dir: PathBuf::new(),
            ..Default::default()
        },
    ];
    for c in bad {
        let e = c.validate().expect_err("should be refused");
        assert!(e.contains("set") || e.contains("use"), "{e}");
    }
    assert!(matches!(
        Profiler::new(ProfilerConfig {
            keep: 0,
            ..Default::default()
        }),
        Err(ProfileError::Invalid(_))
    ));
}

#[test]
fn names_are_strict() {
    assert_eq!(parse_name("cpu-20261126-143318"), Some(1_795_703_598));
    for bad in [
        "../x",
        "cpu-..",
        "cpu-../../etc/passwd",
        "/etc/passwd",
        "/tmp/cpu-20261126-143318",
        "cpu-20261126-143318/",
        "cpu-20261126-143318.pb",
        "cpu-20261126-143318.txt",
        "cpu-20261326-143318", // month 13
        "cpu-2026112-6143318",
        "cpu-20261126-14331a",
        "cpu-+2026112-143318",
        "heap-20261126-14331",
        "",
        "cpu-20261126-143318\0",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        FileKind::split_file_name("cpu-20261126-143318.svg").ok(),
        Some(("cpu-20261126-143318", FileKind::Svg))
    );
    assert_eq!(
        FileKind::split_file_name("cpu-20261126-143318.pb").ok(),
        Some(("cpu-20261126-143318", FileKind::Pb))
    );
    for bad in [
        "cpu-20261126-143318.txt",
        "cpu-20261126-143318.json",
        "cpu-20261126-143318",
        "../cpu-20261126-143318.pb",
        "/cpu-20261126-143318.pb",
        "cpu-..pb",
        "cpu-20261126-143318.pb.svg",
    ] {
        assert!(FileKind::split_file_name(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn file_path_checks_name_and_existence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profiler::new(config(dir.path())).expect("profiler");
    fs::write(dir.path().join("cpu-20261126-143318.pb"), b"x").expect("write");
    assert_eq!(
        p.file_path("cpu-20261126-143318", FileKind::Pb)
            .expect("found"),
        dir.path().join("cpu-20261126-143318.pb")
    );
    assert!(matches!(
        p.file_path("cpu-20261126-143318", FileKind::Svg),
        Err(ProfileError::NotFound)
    ));
    for bad in ["../x", "cpu-..", "/etc/passwd", "cpu-20261126-143318.pb"] {
        assert!(matches!(
            p.file_path(bad, FileKind::Pb),
            Err(ProfileError::Invalid(_))
        ));
    }
    // A directory under a valid name is not a profile.
    fs::create_dir(dir.path().join("cpu-20261126-143319.svg")).expect("mkdir");
    assert!(matches!(
        p.file_path("cpu-20261126-143319", FileKind::Svg),
        Err(ProfileError::NotFound)
    ));
}

#[test]
fn prune_keeps_newest_pairs_and_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let names: Vec<String> = (10..18).map(|s| format!("cpu-20261126-1433{s}")).collect();
    for n in &names {
        for ext in ["pb", "svg", "json"] {
            fs::write(d.join(format!("{n}.{ext}")), b"x").expect("write");
        }
    }
    // An orphan svg older than everything, a stale temporary, and files that are not ours.
    fs::write(d.join("cpu-20261126-143300.svg"), b"x").expect("write");
    fs::write(d.join(".cpu-20261126-143301.pb.tmp"), b"x").expect("write");
    let others = [
        "notes.txt",
        "cpu-foo.pb",
        "heap-20261126-143310.pb",
        "cpu-20261126-143310.txt",
    ];
    for o in others {
        fs::write(d.join(o), b"x").expect("write");
    }

    let deleted = prune(d, 3).expect("prune");
    assert_eq!(deleted, 5 * 3 + 1 + 1);
    let mut left: Vec<String> = fs::read_dir(d)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    left.sort();
    let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    for n in &names[5..] {
        for ext in ["json", "pb", "svg"] {
            want.push(format!("{n}.{ext}"));
        }
    }
    want.sort();
    assert_eq!(left, want);

    let p = Profiler::new(config(d)).expect("profiler");
    let listed: Vec<String> = p
        .list()
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        listed,
        vec![names[7].clone(), names[6].clone(), names[5].clone()]
    );
}

#[test]
fn list_of_missing_dir_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profiler::new(config(&dir.path().join("absent"))).expect("profiler");
    assert_eq!(p.list().expect("list"), Vec::new());
}

#[test]
fn sampler_sees_this_process_burn() {
    let mut s = CpuSampler::new().expect("sampler");
    let _burn = Burner::start();
    s.reset();
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    let p = s
        .sample()
        .expect("sample")
        .expect("a value after the baseline");
    // Two busy threads (this one and the burner); allow for a loaded machine.
    assert!(p > 20.0, "{p}% of one core");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_now_writes_a_decodable_pb_and_an_svg() {
    let _turn = RECORD_LOCK.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profiler::new(config(dir.path())).expect("profiler");
    let _burn = Burner::start();
    let info = p
        .profile_now(Duration::from_secs(1))
        .await
        .expect("profile");
    assert_eq!(info.trigger, Trigger::Manual);
    assert!(info.pb_bytes > 0 && info.svg_bytes > 0);

    let pb = fs::read(p.file_path(&info.name, FileKind::Pb).expect("pb")).expect("read pb");
    let profile = pprof::protos::Profile::parse_from_bytes(&pb).expect("decodes");
    assert!(!profile.sample.is_empty(), "no samples");
    assert!(
        profile.string_table.iter().any(|s| s.contains("Burner")),
        "no burner frame"
    );
    // The profiler's own unwinding frames are trimmed off the leaves.
    for sample in &profile.sample {
        let leaf = sample.location_id.first().and_then(|id| {
            let loc = profile.location.iter().find(|l| l.id == *id)?;
            loc.line.first().map(|l| l.function_id)
        });
        let name = leaf
            .and_then(|f| profile.function.iter().find(|x| x.id == f))
            .and_then(|f| profile.string_table.get(usize::try_from(f.name).ok()?));
        assert!(
            name.is_some_and(|n| !n.starts_with("backtrace::") && !n.contains("pprof::")),
            "leaf {name:?}"
        );
    }

    let svg =
        fs::read_to_string(p.file_path(&info.name, FileKind::Svg).expect("svg")).expect("read svg");
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..svg.len().min(80)]
    );

    assert_eq!(p.list().expect("list"), vec![info.clone()]);
    let st = p.status();
    assert_eq!(st.last_profile.as_deref(), Some(info.name.as_str()));
    assert!(!st.running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_profile_at_once_is_busy() {
    let _turn = RECORD_LOCK.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Profiler::new(config(dir.path())).expect("profiler");
    let other = p.clone();
    let first = p.profile_now(Duration::from_secs(1));
    tokio::pin!(first);
    // `biased`: the first request is polled (and takes the profiler) before the second.
    let second = tokio::select! {
        biased;
        r = &mut first => panic!("first finished before the second was tried: {r:?}"),
        r = other.profile_now(Duration::from_secs(1)) => r,
    };
    assert!(matches!(second, Err(ProfileError::Busy)), "{second:?}");
    assert!(p.status().running);
    first.await.expect("first profile");
    assert!(!p.status().running);
    assert!(matches!(
        p.profile_now(Duration::from_millis(10)).await,
        Err(ProfileError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_at_zero_threshold_records_and_stops_on_shutdown() {
    let _turn = RECORD_LOCK.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Arc::new(Profiler::new(config(dir.path())).expect("profiler"));
    let mut written = p.subscribe();
    let (stop, stop_rx) = watch::channel(false);
    let task = p.start_monitor(stop_rx.clone()).expect("monitor started");
    assert!(p.start_monitor(stop_rx).is_none(), "a second monitor");

    tokio::time::timeout(Duration::from_secs(30), written.changed())
        .await
        .expect("a profile within 30 s")
        .expect("sender alive");
    let info = written.borrow_and_update().clone().expect("info");
    assert_eq!(info.trigger, Trigger::Auto);
    let listed = p.list().expect("list");
    assert_eq!(listed.first(), Some(&info));
    let st = p.status();
    assert!(st.monitoring && st.last_sample_percent.is_some());

    // In its cooldown now: shutdown ends it promptly.
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("monitor stops")
        .expect("monitor task did not panic");
    assert!(!p.status().monitoring);
}

#[tokio::test]
async fn a_disabled_monitor_starts_profiling_when_enabled_at_run_time() {
    let _turn = RECORD_LOCK.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let on = ProfilerConfig {
        threshold_percent: 0.0,
        duration: Duration::from_secs(1),
        ..config(dir.path())
    };
    let p = Arc::new(
        Profiler::new(ProfilerConfig {
            enabled: false,
            ..on.clone()
        })
        .expect("profiler"),
    );
    let mut written = p.subscribe();
    let (stop, stop_rx) = watch::channel(false);
    let task = p
        .start_monitor(stop_rx)
        .expect("the monitor runs while disabled");
    p.set_config(ProfilerConfig {
        enabled: true,
        ..on
    })
    .expect("valid settings");
    tokio::time::timeout(Duration::from_secs(20), written.changed())
        .await
        .expect("a profile once enabled")
        .expect("profiler alive");
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("monitor stops")
        .expect("monitor task did not panic");
}
