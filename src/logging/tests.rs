use super::file::name_key;
use super::*;
use std::collections::HashMap;
use std::path::Path;

fn limits(max_lines: u64, max_bytes: u64, keep: usize) -> Limits {
    Limits {
        max_lines,
        max_bytes,
        keep,
    }
}

/// Our files in `dir`, oldest first (by the name's stamp and suffix).
fn our_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| name_key(p.file_name().unwrap().to_str().unwrap()).is_some() && p.is_file())
        .collect();
    v.sort_by_key(|p| name_key(p.file_name().unwrap().to_str().unwrap()).unwrap());
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn fixed_clock(stamp: &'static str) -> Box<dyn FnMut() -> String + Send> {
    Box::new(move || stamp.to_string())
}

#[test]
fn rotates_after_max_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileSink::open_with_clock(
        dir.path(),
        limits(10, u64::MAX, 100),
        fixed_clock("20261126-143318"),
    )
    .unwrap();
    for i in 0..25 {
        s.write_line(&format!("line {i}")).unwrap();
    }
    drop(s);
    let files = our_files(dir.path());
    let counts: Vec<usize> = files.iter().map(|f| read(f).lines().count()).collect();
    assert_eq!(counts, [10, 10, 5]);
    let all: String = files.iter().map(|f| read(f)).collect();
    let want: String = (0..25).map(|i| format!("line {i}\n")).collect();
    assert_eq!(all, want);
}

#[test]
fn rotates_before_passing_max_bytes_and_gives_a_huge_line_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileSink::open(dir.path(), limits(1_000_000, 100, 100)).unwrap();
    let line = "x".repeat(29); // 30 bytes with its newline: 3 per file
    for _ in 0..7 {
        s.write_line(&line).unwrap();
    }
    s.write_line(&"y".repeat(250)).unwrap();
    s.write_line(&line).unwrap();
    drop(s);
    let sizes: Vec<u64> = our_files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert_eq!(sizes, [90, 90, 30, 251, 30]);
}

#[test]
fn keeps_the_newest_files_and_leaves_other_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    // Older files of ours (mtime an hour ago), and files that only look similar.
    for name in [
        "sluice-20200101-000000.log",
        "sluice-20200101-000001.log",
        "sluice-20200101-000001-1.log",
    ] {
        let f = std::fs::File::create(d.join(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    let foreign = [
        "notes.txt",
        "sluice-20200101-000000.log.1",
        "sluice-20200101-000000.log.gz",
        "sluice-foo.log",
        "sluice-2020010-000000.log",
        "sluice-20200101-000000-0.log",
        "sluice-20200101-000000-x.log",
        "other-20200101-000000.log",
        "sluice.log",
    ];
    for name in foreign {
        std::fs::write(d.join(name), "keep me").unwrap();
    }
    std::fs::create_dir(d.join("sluice-20200101-000002.log")).unwrap();

    let mut s = FileSink::open(d, limits(2, u64::MAX, 3)).unwrap();
    // Opening pruned the oldest of the four (current + 3 old → keep 3).
    assert!(!d.join("sluice-20200101-000000.log").exists());
    assert!(d.join("sluice-20200101-000001-1.log").exists());
    for i in 0..10 {
        s.write_line(&format!("l{i}")).unwrap();
    }
    let current = s.path().unwrap().to_path_buf();
    drop(s);
    let ours = our_files(d);
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(ours.contains(&current));
    assert!(!ours.iter().any(|p| p.to_str().unwrap().contains("2020")));
    // The newest three hold the last six lines, whole and in order.
    let all: String = ours.iter().map(|f| read(f)).collect();
    assert_eq!(all, "l4\nl5\nl6\nl7\nl8\nl9\n");
    for name in foreign {
        assert_eq!(read(&d.join(name)), "keep me", "{name}");
    }
    assert!(d.join("sluice-20200101-000002.log").is_dir());
}

#[test]
fn the_same_second_gets_a_suffix_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sluice-20261126-143318.log"), "earlier run\n").unwrap();
    let mut s = FileSink::open_with_clock(
        d,
        limits(1_000_000, u64::MAX, 100),
        fixed_clock("20261126-143318"),
    )
    .unwrap();
    assert_eq!(s.path().unwrap(), d.join("sluice-20261126-143318-1.log"));
    s.write_line("a").unwrap();
    s.reopen().unwrap();
    assert_eq!(s.path().unwrap(), d.join("sluice-20261126-143318-2.log"));
    s.write_line("b").unwrap();
    drop(s);
    assert_eq!(read(&d.join("sluice-20261126-143318.log")), "earlier run\n");
    assert_eq!(read(&d.join("sluice-20261126-143318-1.log")), "a\n");
    assert_eq!(read(&d.join("sluice-20261126-143318-2.log")), "b\n");
}

#[test]
fn reopen_starts_a_new_file_after_the_old_one_was_moved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut s = FileSink::open(d, limits(1_000_000, u64::MAX, 100)).unwrap();
    let first = s.path().unwrap().to_path_buf();
    s.write_line("before").unwrap();
    // logrotate moves the file away (same directory, a name not ours), then sends SIGHUP.
    let moved = d.join("rotated.1");
    std::fs::rename(&first, &moved).unwrap();
    s.reopen().unwrap();
    // A fresh file: within the same second it may well take the freed name again.
    let second = s.path().unwrap().to_path_buf();
    assert!(second.exists());
    s.write_line("after").unwrap();
    s.flush().unwrap();
    assert_eq!(
        read(&moved),
        "before\n",
        "the old handle was flushed before closing"
    );
    assert_eq!(read(&second), "after\n");
    // The directory itself removed: reopen creates it again.
    drop(s);
    let sub = d.join("sub");
    let mut s = FileSink::open(&sub, limits(1_000_000, u64::MAX, 100)).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    s.reopen().unwrap();
    s.write_line("back").unwrap();
    s.flush().unwrap();
    assert_eq!(read(s.path().unwrap()), "back\n");
}

#[test]
fn many_threads_through_the_sink_thread_lose_and_split_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (max_lines, max_bytes) = (700u64, 20_000u64);
    let sink = FileSink::open(&d, limits(max_lines, max_bytes, 10_000)).unwrap();
    let (report, reports) = mpsc::channel();
    let out = FileOut {
        sink,
        failing: false,
        report,
    };
    let (tx, rx) = mpsc::channel::<Msg>();
    let writer = spawn_sink("log-file-test", rx, out).unwrap();
    let (threads, per_thread) = (6usize, 3000usize);
    let producers: Vec<_> = (0..threads)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let pad = "x".repeat((i * 37 + t * 11) % 300);
                    tx.send(Msg::Line(format!("t{t} i{i} {pad} end"))).unwrap();
                    if t == 0 && i % 500 == 0 {
                        tx.send(Msg::Reopen).unwrap();
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    drop(tx);
    writer.join().unwrap();
    assert!(reports.try_recv().is_err(), "no write error was reported");

    let mut next: HashMap<usize, usize> = HashMap::new();
    let mut total = 0;
    let files = our_files(&d);
    assert!(files.len() > 10, "{} files", files.len());
    for f in &files {
        let text = read(f);
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{f:?} ends mid-line"
        );
        assert!(text.len() as u64 <= max_bytes, "{f:?} too big");
        assert!(text.lines().count() as u64 <= max_lines, "{f:?} too long");
        for line in text.lines() {
            let mut parts = line.split(' ');
            let t: usize = parts.next().unwrap()[1..].parse().unwrap();
            let i: usize = parts.next().unwrap()[1..].parse().unwrap();
            let pad = parts.next().unwrap();
            assert_eq!(pad.len(), (i * 37 + t * 11) % 300, "{line}");
            assert_eq!(parts.next(), Some("end"), "{line}");
            // Per thread, lines arrive in the order they were sent, across files.
            let n = next.entry(t).or_default();
            assert_eq!(i, *n, "thread {t}");
            *n += 1;
            total += 1;
        }
    }
    assert_eq!(total, threads * per_thread);
}

#[test]
fn name_pattern() {
    assert_eq!(
        name_key("sluice-20261126-143318.log"),
        Some((20261126, 143318, 0))
    );
    assert_eq!(
        name_key("sluice-20261126-143318-12.log"),
        Some((20261126, 143318, 12))
    );
    for bad in [
        "sluice-20261126-143318.log.1",
        "sluice-20261126-143318-0.log",
        "sluice-20261126-143318-.log",
        "sluice-20261126-1433.log",
        "sluice-20261126.log",
        "sluice-20261126-143318-1-2.log",
        "xsluice-20261126-143318.log",
        "sluice-2026112a-143318.log",
        "sluice-20261126-+43318.log",
    ] {
        assert_eq!(name_key(bad), None, "{bad}");
    }
}

#[test]
fn a_line_stays_one_line() {
    assert_eq!(one_line("a\nb\r\nc".into()), "a\\nb\\r\\nc");
    assert_eq!(one_line("plain".into()), "plain");
}

#[test]
fn panic_lines_say_where_and_what() {
    let here = std::panic::Location::caller();
    let s: Box<dyn Any + Send> = Box::new("index out of bounds");
    let line = panic_message(Some("tokio-runtime-worker"), Some(here), s.as_ref());
    assert_eq!(
        line,
        format!("panic in thread 'tokio-runtime-worker' at {here}: index out of bounds")
    );
    assert!(line.contains("src/logging/tests.rs:"), "{line}");
    let s: Box<dyn Any + Send> = Box::new(format!("bad {}", 7));
    assert!(panic_message(None, None, s.as_ref()).ends_with("an unknown place: bad 7"));
    let s: Box<dyn Any + Send> = Box::new(7u8);
    assert!(panic_message(None, None, s.as_ref()).contains("non-string payload"));
}

/// A panic inside a request's task: the hook sees that task's request id, and the runtime (and
/// so the process) carries on. The test hook handles only its own marker and passes every other
/// panic to the hook it replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_request_task_keeps_its_id_and_the_runtime() {
    static SEEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    const MARKER: &str = "logging-test-marker-panic";
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&MARKER) {
            *SEEN.lock().unwrap() = Some(current_request_id());
        } else {
            previous(info);
        }
    }));
    let task = tokio::spawn(REQUEST_ID.scope("01TESTREQUESTID".to_string(), async {
        tokio::task::yield_now().await;
        if current_request_id() == "01TESTREQUESTID" {
            std::panic::panic_any(MARKER);
        }
    }));
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(SEEN.lock().unwrap().as_deref(), Some("01TESTREQUESTID"));
    // The runtime still runs tasks.
    assert_eq!(tokio::spawn(async { 2 + 2 }).await.unwrap(), 4);
}

#[test]
fn options_from_config() {
    let c = crate::config::Config::default();
    let o = LogOptions::from_config(&c);
    assert_eq!(o.dir, Some(PathBuf::from("./data/logs")));
    assert_eq!(
        (o.max_lines, o.max_bytes, o.keep),
        (1_000_000, 104_857_600, 10)
    );
    assert_eq!(LogOptions::from(true).dir, None);
}

#[test]
fn debug_switches_at_run_time() {
    set_debug(true);
    assert!(debug_enabled());
    set_debug(false);
    assert!(!debug_enabled());
    assert!(log::max_level() >= log::LevelFilter::Info);
}
