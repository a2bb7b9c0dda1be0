//! Table-driven tests of the SSRF guard: every refused range in every spelling, the public
//! addresses that must pass, URL form errors, and the allow-list.

use super::*;

const T: Duration = Duration::from_secs(5);

fn none() -> AllowList {
    AllowList::default()
}

fn rule_of(url: &str, allow: &AllowList) -> Result<(), Option<Rule>> {
    check(url, allow, T).map(|_| ()).map_err(|e| e.rule())
}

#[test]
fn refused_addresses_in_every_spelling() {
    use Rule::*;
    let cases: &[(&str, Rule)] = &[
        // loopback: dotted, short, decimal, octal, hex, mixed, IPv6, by name
        ("http://127.0.0.1/", Loopback),
        ("http://127.1/", Loopback),
        ("http://127.0.1/", Loopback),
        ("http://2130706433/", Loopback),
        ("http://0177.0.0.1/", Loopback),
        ("http://017700000001/", Loopback),
        ("http://0x7f.1/", Loopback),
        ("http://0x7f000001/", Loopback),
        ("http://0x7F.0.0.0x1/", Loopback),
        ("http://127.255.255.254:8080/x?y=1", Loopback),
        ("http://[::1]/", Loopback),
        ("http://[0:0:0:0:0:0:0:1]/", Loopback),
        ("http://localhost/", Loopback),
        ("http://LOCALHOST./", Loopback),
        ("https://%31%32%37.0.0.1/", Loopback),
        // unspecified
        ("http://0.0.0.0/", Unspecified),
        ("http://0/", Unspecified),
        ("http://0x0/", Unspecified),
        ("http://0.1.2.3/", Unspecified),
        ("http://[::]/", Unspecified),
        // private
        ("http://10.0.0.1/", Private),
        ("http://167772161/", Private),
        ("http://012.0.0.1/", Private),
        ("http://0xa.0.0.1/", Private),
        ("http://172.16.0.1/", Private),
        ("http://172.31.255.255/", Private),
        ("http://192.168.1.1/", Private),
        ("http://3232235777/", Private),
        ("http://0xc0a80101/", Private),
        // link-local
        ("http://169.254.1.1/", LinkLocal),
        ("http://[fe80::1]/", LinkLocal),
        ("http://[febf::1]/", LinkLocal),
        // CGNAT
        ("http://100.64.0.1/", Cgnat),
        ("http://100.127.255.255/", Cgnat),
        // unique-local and site-local IPv6
        ("http://[fc00::1]/", UniqueLocal),
        ("http://[fd12:3456:789a::1]/", UniqueLocal),
        ("http://[fec0::1]/", SiteLocal),
        // IPv4 inside IPv6: mapped, compatible, translated, 6to4 — judged by the IPv4 address
        ("http://[::ffff:127.0.0.1]/", Loopback),
        ("http://[::ffff:7f00:1]/", Loopback),
        ("http://[::ffff:10.0.0.1]/", Private),
        ("http://[::ffff:192.168.0.1]/", Private),
        ("http://[::ffff:0.0.0.0]/", Unspecified),
        ("http://[::127.0.0.1]/", Loopback),
        ("http://[::10.0.0.1]/", Private),
        ("http://[::ffff:0:10.0.0.1]/", Private),
        ("http://[2002:7f00:1::1]/", Loopback),
        ("http://[2002:a00:1::]/", Private),
        // NAT64 (any embedded address) and Teredo
        ("http://[64:ff9b::7f00:1]/", Nat64),
        ("http://[64:ff9b::10.0.0.1]/", Nat64),
        ("http://[64:ff9b::8.8.8.8]/", Nat64),
        ("http://[64:ff9b:1::1]/", Nat64),
        ("http://[2001::1]/", Teredo),
        // multicast and broadcast
        ("http://224.0.0.1/", Multicast),
        ("http://239.255.255.250/", Multicast),
        ("http://[ff02::1]/", Multicast),
        ("http://255.255.255.255/", Broadcast),
        ("http://4294967295/", Broadcast),
        // documentation, benchmarking, reserved
        ("http://192.0.2.1/", Documentation),
        ("http://198.51.100.7/", Documentation),
        ("http://203.0.113.9/", Documentation),
        ("http://[2001:db8::1]/", Documentation),
        ("http://[3fff::1]/", Documentation),
        ("http://198.18.0.1/", Benchmarking),
        ("http://198.19.255.255/", Benchmarking),
        ("http://[2001:2::1]/", Benchmarking),
        ("http://192.0.0.8/", Reserved),
        ("http://192.88.99.1/", Reserved),
        ("http://240.0.0.1/", Reserved),
        ("http://[100::1]/", Reserved),
        ("http://[2001:10::1]/", Reserved),
        ("http://[5f00::1]/", Reserved),
        // cloud metadata by address (every spelling) and by name
        ("http://169.254.169.254/latest/meta-data/", Metadata),
        ("http://2852039166/", Metadata),
        ("http://0xa9fea9fe/", Metadata),
        ("http://0251.0376.0251.0376/", Metadata),
        ("http://169.254.43518/", Metadata),
        ("http://[::ffff:169.254.169.254]/", Metadata),
        ("http://[::ffff:a9fe:a9fe]/", Metadata),
        ("http://169.254.170.2/v2/credentials", Metadata),
        ("http://100.100.100.200/latest/meta-data", Metadata),
        ("http://[fd00:ec2::254]/", Metadata),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            Metadata,
        ),
        ("http://METADATA.google.internal./", Metadata),
        ("http://metadata/", Metadata),
        ("http://instance-data/", Metadata),
    ];
    let mut wrong = Vec::new();
    for (url, rule) in cases {
        match rule_of(url, &none()) {
            Err(Some(r)) if r == *rule => {}
            other => wrong.push(format!("{url}: expected {rule:?}, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn public_addresses_pass_and_are_pinned() {
    let cases: &[(&str, &str)] = &[
        ("http://8.8.8.8/hook", "8.8.8.8:80"),
        ("https://1.1.1.1/", "1.1.1.1:443"),
        ("https://134744072:8443/", "8.8.8.8:8443"),
        ("http://11.0.0.1/", "11.0.0.1:80"),
        ("http://172.32.0.1/", "172.32.0.1:80"),
        ("http://172.15.255.255/", "172.15.255.255:80"),
        ("http://100.128.0.1/", "100.128.0.1:80"),
        ("http://192.169.0.1/", "192.169.0.1:80"),
        (
            "http://[2606:4700:4700::1111]/",
            "[2606:4700:4700::1111]:80",
        ),
        ("http://[::ffff:8.8.8.8]/", "[::ffff:8.8.8.8]:80"),
        ("http://[2002:808:808::1]/", "[2002:808:808::1]:80"),
    ];
    for (url, pinned) in cases {
        let c = check(url, &none(), T).unwrap_or_else(|e| panic!("{url} refused: {e}"));
        let want: SocketAddr = pinned.parse().unwrap();
        assert_eq!(c.addrs, vec![want], "{url}");
    }
}

#[test]
fn malformed_or_disallowed_urls_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("ftp://8.8.8.8/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://8.8.8.8:70/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http://user:pass@8.8.8.8/", "user name or password"),
        ("http://user@8.8.8.8/", "user name or password"),
        ("https://:secret@8.8.8.8/", "user name or password"),
        ("not a url", "not a valid URL"),
        ("", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ("http://256.0.0.1/", "not a valid URL"),
    ];
    for (url, words) in cases {
        let e = check(url, &none(), T)
            .err()
            .unwrap_or_else(|| panic!("{url} passed"));
        assert!(matches!(e, Refused::Invalid(_)), "{url}: {e:?}");
        assert!(e.to_string().contains(words), "{url}: {e}");
    }
    let long = format!("http://8.8.8.8/{}", "a".repeat(MAX_URL_LEN));
    assert!(check(&long, &none(), T).is_err());
}

#[test]
fn refusal_messages_name_the_rule_and_the_address() {
    let e = check("http://0x7f.1:9/x", &none(), T).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("127.0.0.1") && m.contains("loopback"), "{m}");
    assert!(m.contains("allow-list"), "{m}");
    let e = check("http://[::ffff:10.0.0.1]/", &none(), T).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("embeds 10.0.0.1") && m.contains("private"),
        "{m}"
    );
    let m = check("http://169.254.169.254/", &none(), T)
        .unwrap_err()
        .to_string();
    assert!(m.contains("metadata") && !m.contains("allow-list"), "{m}");
}

#[test]
fn the_allow_list_admits_named_hosts_addresses_and_ranges_but_never_metadata() {
    let allow = |e: &[&str]| {
        AllowList::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    };
    let lo = allow(&["127.0.0.1"]);
    assert!(check("http://127.0.0.1:9/x", &lo, T).is_ok());
    assert!(
        check("http://127.1:9/x", &lo, T).is_ok(),
        "same address, other spelling"
    );
    assert!(check("http://2130706433/", &lo, T).is_ok());
    assert_eq!(rule_of("http://127.0.0.2/", &lo), Err(Some(Rule::Loopback)));
    assert_eq!(rule_of("http://10.0.0.1/", &lo), Err(Some(Rule::Private)));

    let lan = allow(&["10.0.0.0/8", "fd00::/8"]);
    assert!(check("http://10.9.9.9/", &lan, T).is_ok());
    assert!(check("http://[::ffff:10.1.1.1]/", &lan, T).is_ok());
    assert!(check("http://[fd00::5]/", &lan, T).is_ok());
    assert_eq!(
        rule_of("http://192.168.0.1/", &lan),
        Err(Some(Rule::Private))
    );
    assert_eq!(
        rule_of("http://[fd00:ec2::254]/", &lan),
        Err(Some(Rule::Metadata))
    );

    let by_name = allow(&["LocalHost."]);
    let c = check("http://localhost:7/", &by_name, T).unwrap();
    assert!(
        c.addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 7)
    );
    assert_eq!(
        rule_of("http://127.0.0.1/", &by_name),
        Err(Some(Rule::Loopback))
    );

    let everything = allow(&["0.0.0.0/0", "::/0", "metadata.google.internal"]);
    for url in [
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/",
    ] {
        assert_eq!(
            rule_of(url, &everything),
            Err(Some(Rule::Metadata)),
            "{url}"
        );
    }
    assert!(check("http://10.0.0.1/", &everything, T).is_ok());

    assert!(AllowList::parse(&["not a host!".to_string()]).is_err());
    assert!(AllowList::parse(&["10.0.0.0/33".to_string()]).is_err());
    assert!(AllowList::parse(&["[::1]".to_string(), " ".to_string()]).is_ok());
}

#[test]
fn unresolvable_hosts_are_refused() {
    let e = check("http://no-such-host.invalid/", &none(), T).unwrap_err();
    assert!(matches!(e, Refused::Unresolvable { .. }), "{e:?}");
}

#[test]
fn the_target_for_logs_has_no_path_query_or_credentials() {
    let u = parse("https://Example.COM:8443/hook/SECRET?token=abc#x").unwrap();
    assert_eq!(target_of(&u), "example.com:8443");
    let u = parse("http://[::ffff:8.8.8.8]/x").unwrap();
    assert_eq!(target_of(&u), "[::ffff:8.8.8.8]");
}
