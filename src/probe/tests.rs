use super::*;

fn ep(url: &str) -> String {
    endpoint(url).unwrap().to_string()
}

#[test]
fn base_urls_are_normalised() {
    let want = "http://127.0.0.1:3000/v1/chat/completions";
    for url in [
        "http://127.0.0.1:3000",
        "http://127.0.0.1:3000/",
        "http://127.0.0.1:3000/v1",
        "http://127.0.0.1:3000/v1/",
        " http://127.0.0.1:3000/v1/chat/completions ",
    ] {
        assert_eq!(ep(url), want, "{url}");
    }
    assert_eq!(
        ep("https://gw.example.com/llm/v1"),
        "https://gw.example.com/llm/v1/chat/completions"
    );
    assert_eq!(
        ep("HTTPS://gw.example.com"),
        "https://gw.example.com/v1/chat/completions"
    );
}

#[test]
fn bad_urls_are_refused() {
    for url in [
        "",
        "127.0.0.1:3000",
        "localhost",
        "ftp://host/",
        "http://",
        "http://host/?a=b",
        "http://exa mple.com",
        "/v1",
    ] {
        assert!(endpoint(url).is_err(), "{url:?} was accepted");
    }
}

#[test]
fn arguments_are_validated() {
    let ok = ProbeArgs::new("http://127.0.0.1:3000", "sk-x");
    let p = Plan::from_args(&ok).unwrap();
    assert_eq!((p.requests, p.concurrency), (10, 1));
    assert_eq!(p.timeout, Duration::from_secs(60));
    assert!(p.authorization.is_sensitive());
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
    );

    let mut s = ok.clone();
    s.stream = true;
    s.concurrency = 50;
    s.requests = 3;
    let p = Plan::from_args(&s).unwrap();
    assert_eq!(p.concurrency, 3, "never more workers than requests");
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(body["stream"], true);

    type Change = fn(&mut ProbeArgs);
    let bad: Vec<(&str, Change)> = vec![
        ("n = 0", |a| a.requests = 0),
        ("n too big", |a| a.requests = MAX_REQUESTS + 1),
        ("concurrency 0", |a| a.concurrency = 0),
        ("timeout 0", |a| a.timeout = 0.0),
        ("timeout < 0", |a| a.timeout = -1.0),
        ("timeout NaN", |a| a.timeout = f64::NAN),
        ("timeout inf", |a| a.timeout = f64::INFINITY),
        ("empty key", |a| a.key = " ".into()),
        ("key with newline", |a| a.key = "sk-a\nb".into()),
        ("empty model", |a| a.model = String::new()),
        ("bad url", |a| a.url = "not a url".into()),
    ];
    for (what, change) in bad {
        let mut a = ok.clone();
        change(&mut a);
        assert!(Plan::from_args(&a).is_err(), "{what} was accepted");
    }
}

#[test]
fn clap_defaults_match_new() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        probe: ProbeArgs,
    }
    let cli = Cli::try_parse_from(["probe", "--url", "http://h", "--key", "k"]).unwrap();
    let d = ProbeArgs::new("http://h", "k");
    let p = cli.probe;
    assert_eq!(
        (
            p.model,
            p.requests,
            p.concurrency,
            p.stream,
            p.json,
            p.timeout
        ),
        (
            d.model,
            d.requests,
            d.concurrency,
            d.stream,
            d.json,
            d.timeout
        )
    );
    let cli = Cli::try_parse_from([
        "probe",
        "--url",
        "http://h",
        "--key",
        "k",
        "-n",
        "5",
        "-c",
        "2",
        "--stream",
        "--json",
        "--timeout",
        "1.5",
    ])
    .unwrap();
    assert_eq!(
        (cli.probe.requests, cli.probe.concurrency, cli.probe.timeout),
        (5, 2, 1.5)
    );
    assert!(cli.probe.stream && cli.probe.json);
}

#[test]
fn works_as_a_subcommand_next_to_global_flags() {
    use clap::{Parser, Subcommand};
    #[derive(Parser)]
    struct Cli {
        #[arg(long, global = true)]
        debug: bool,
        #[command(subcommand)]
        command: Option<Command>,
    }
    #[derive(Subcommand)]
    enum Command {
        Serve,
        /// Probe a gateway.
        Probe(ProbeArgs),
    }
    let cli = Cli::try_parse_from([
        "sluice", "probe", "--url", "http://h", "--key", "k", "-n", "3", "--debug",
    ])
    .unwrap();
    assert!(cli.debug);
    match cli.command {
        Some(Command::Probe(a)) => assert_eq!(a.requests, 3),
        _ => panic!("not the probe subcommand"),
    }
    assert!(Cli::try_parse_from(["sluice", "probe", "--url", "http://h", "-n", "x"]).is_err());
    assert!(Cli::try_parse_from(["sluice", "serve"]).is_ok());
}

#[tokio::test]
async fn bad_arguments_exit_2_with_a_message() {
    let mut a = ProbeArgs::new("http://127.0.0.1:3000", "sk-x");
    a.requests = 0;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).await, EXIT_USAGE);
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("-n must be at least 1")
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    // A port that was just free: connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a = ProbeArgs::new(format!("http://127.0.0.1:{port}"), "sk-x");
    a.requests = 2;
    a.json = true;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).await, EXIT_FAILED);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["failures"]["by_error"]["connect"], 2, "{v}");
    assert_eq!(v["latency_ms"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let mut a = ProbeArgs::new(format!("http://{addr}/"), "sk-x");
    a.requests = 1;
    a.timeout = 0.2;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).await, EXIT_FAILED);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("timeout: 1"), "{text}");
    assert!(text.contains("no complete response within 0.2 s"), "{text}");
    hold.abort();
}
