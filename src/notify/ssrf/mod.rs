//! The SSRF guard for user-set URLs (webhook, Bark, Gotify, and any later one).
//!
//! A URL is parsed the way the `url` crate (WHATWG) parses it — so `2130706433`, `0177.0.0.1`,
//! `0x7f.1` and `127.1` all become `127.0.0.1` — then its host is resolved with the system
//! resolver (getaddrinfo, as the connection would), and every resulting address is checked.
//! A URL passes only when every address is public, or allow-listed by the admin. The checked
//! addresses are returned so the sender connects to exactly those (see `outbound`): a DNS answer
//! that changes between the check and the connection (rebinding) cannot reach a refused address.
//!
//! Cloud metadata endpoints are refused even when allow-listed: no self-hosted receiver lives
//! there, and reaching one leaks the machine's credentials.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;
use url::{Host, Url};

mod classify;
pub use classify::classify;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Host names of cloud metadata services (compared lowercase, without a trailing dot).
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
    "metadata.packet.net",
    "metadata.platformequinix.com",
];

/// Why an address is refused. Each names its ranges in the message, so a user can see which
/// rule applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Loopback,
    Unspecified,
    Private,
    LinkLocal,
    Cgnat,
    UniqueLocal,
    SiteLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
    Nat64,
    Teredo,
    Metadata,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Loopback => "a loopback address (127.0.0.0/8, ::1)",
            Rule::Unspecified => "an unspecified address (0.0.0.0/8, ::)",
            Rule::Private => "a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
            Rule::LinkLocal => "a link-local address (169.254.0.0/16, fe80::/10)",
            Rule::Cgnat => "a carrier-grade NAT address (100.64.0.0/10)",
            Rule::UniqueLocal => "a unique-local IPv6 address (fc00::/7)",
            Rule::SiteLocal => "a site-local IPv6 address (fec0::/10)",
            Rule::Multicast => "a multicast address (224.0.0.0/4, ff00::/8)",
            Rule::Broadcast => "the broadcast address (255.255.255.255)",
            Rule::Documentation => {
                "a documentation address (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, \
                 2001:db8::/32, 3fff::/20)"
            }
            Rule::Benchmarking => "a benchmarking address (198.18.0.0/15, 2001:2::/48)",
            Rule::Reserved => "a reserved address (not globally routable)",
            Rule::Nat64 => "a NAT64 address (64:ff9b::/96, 64:ff9b:1::/48)",
            Rule::Teredo => "a Teredo tunnel address (2001::/32)",
            Rule::Metadata => "a cloud metadata endpoint",
        }
    }
}

/// A refused URL, with the reason in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a URL, or not one we send to (scheme, credentials, length).
    Invalid(String),
    /// The host could not be resolved (or took longer than the timeout).
    Unresolvable { host: String, reason: String },
    /// The host name itself is refused (cloud metadata names).
    Host { host: String, rule: Rule },
    /// The host resolves to a refused address. `via` is the IPv4 address embedded in an
    /// IPv6 one (mapped, compatible, 6to4), when that is what was refused.
    Address {
        host: String,
        addr: IpAddr,
        rule: Rule,
        via: Option<Ipv4Addr>,
    },
}

impl Refused {
    /// The rule that refused it, if an address or name rule did.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Refused::Host { rule, .. } | Refused::Address { rule, .. } => Some(*rule),
            Refused::Invalid(_) | Refused::Unresolvable { .. } => None,
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Invalid(m) => f.write_str(m),
            Refused::Unresolvable { host, reason } => {
                write!(f, "the host {host} cannot be resolved ({reason})")
            }
            Refused::Host { host, rule } => {
                write!(f, "the host {host} is refused: it is {}", rule.describe())
            }
            Refused::Address {
                host,
                addr,
                rule,
                via,
            } => {
                let what = match via {
                    Some(v4) => format!("{addr} (which embeds {v4})"),
                    None => addr.to_string(),
                };
                let hint = if *rule == Rule::Metadata {
                    ""
                } else {
                    "; an admin can allow a self-hosted receiver with the notification allow-list"
                };
                write!(
                    f,
                    "the host {host} resolves to {what}, which is refused: it is {}{hint}",
                    rule.describe()
                )
            }
        }
    }
}

/// The admin's allow-list: exact host names, IP addresses or CIDR ranges.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Parses entries; an entry that is neither an address, a range nor a host name is an
    /// error naming it.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut out = AllowList::default();
        for raw in entries {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            if let Ok(net) = e.parse::<IpNet>() {
                out.nets.push(net);
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                out.nets.push(IpNet::from(ip));
            } else if e
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
            {
                out.names.push(normalize_name(e));
            } else {
                return Err(format!(
                    "allow-list entry {e:?} is not a host name, an IP address or a CIDR range"
                ));
            }
        }
        Ok(out)
    }

    /// The same, skipping (and logging) entries that do not parse, for the send path.
    pub fn lenient(entries: &[String]) -> AllowList {
        let mut out = AllowList::default();
        for e in entries {
            match AllowList::parse(std::slice::from_ref(e)) {
                Ok(one) => {
                    out.names.extend(one.names);
                    out.nets.extend(one.nets);
                }
                Err(m) => log::warn!("{m}; ignored"),
            }
        }
        out
    }

    fn allows_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn allows_addr(&self, ip: IpAddr, via: Option<Ipv4Addr>) -> bool {
        self.nets
            .iter()
            .any(|n| n.contains(&ip) || via.is_some_and(|v4| n.contains(&IpAddr::V4(v4))))
    }
}

/// A URL that passed, with the addresses the connection must use.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The normalised URL (the `url` crate's serialisation).
    pub url: Url,
    /// `host[:port]` for logs: no path, query or credentials.
    pub target: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses and checks a URL's form: http/https, a host, no credentials, bounded length.
pub fn parse(raw: &str) -> Result<Url, Refused> {
    if raw.len() > MAX_URL_LEN {
        return Err(Refused::Invalid(format!(
            "the URL is longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(raw.trim())
        .map_err(|e| Refused::Invalid(format!("not a valid URL ({e}): give http(s)://host/…")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Invalid(format!(
            "the URL scheme {:?} is not allowed: use http or https",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Invalid(
            "the URL must not contain a user name or password (user:pass@host)".into(),
        ));
    }
    if url.host().is_none() {
        return Err(Refused::Invalid("the URL has no host".into()));
    }
    Ok(url)
}

/// `host[:port]` of a parsed URL, for logs and the delivery log.
pub fn target_of(url: &Url) -> String {
    let host = match url.host() {
        Some(Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// Parses, resolves and checks `raw`. Blocking (DNS): call it off the async threads. The
/// lookup is bounded by `timeout`.
pub fn check(raw: &str, allow: &AllowList, timeout: Duration) -> Result<Checked, Refused> {
    let url = parse(raw)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let target = target_of(&url);
    let (host_text, ips) = match url.host() {
        Some(Host::Ipv4(a)) => (a.to_string(), vec![IpAddr::V4(a)]),
        Some(Host::Ipv6(a)) => (a.to_string(), vec![IpAddr::V6(a)]),
        Some(Host::Domain(d)) => {
            let name = normalize_name(d);
            if METADATA_HOSTS.contains(&name.as_str()) {
                return Err(Refused::Host {
                    host: name,
                    rule: Rule::Metadata,
                });
            }
            let ips = resolve(&name, port, timeout)?;
            if allow.allows_name(&name) {
                // Allow-listed by name: every address is allowed, except metadata ones.
                for ip in &ips {
                    if let Some((Rule::Metadata, via)) = classify(*ip) {
                        return Err(refused_addr(&name, *ip, Rule::Metadata, via));
                    }
                }
                return Ok(Checked {
                    url,
                    target,
                    addrs: ips
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect(),
                });
            }
            (name, ips)
        }
        None => return Err(Refused::Invalid("the URL has no host".into())),
    };
    for ip in &ips {
        check_addr(&host_text, *ip, allow)?;
    }
    Ok(Checked {
        url,
        target,
        addrs: ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    })
}

/// One resolved address against the rules and the allow-list.
pub fn check_addr(host: &str, ip: IpAddr, allow: &AllowList) -> Result<(), Refused> {
    match classify(ip) {
        None => Ok(()),
        Some((Rule::Metadata, via)) => Err(refused_addr(host, ip, Rule::Metadata, via)),
        Some((_, via)) if allow.allows_addr(ip, via) => Ok(()),
        Some((rule, via)) => Err(refused_addr(host, ip, rule, via)),
    }
}

fn refused_addr(host: &str, ip: IpAddr, rule: Rule, via: Option<Ipv4Addr>) -> Refused {
    Refused::Address {
        host: host.to_string(),
        addr: ip,
        rule,
        via,
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// getaddrinfo on a helper thread, so a slow resolver cannot hold the caller past `timeout`.
fn resolve(name: &str, port: u16, timeout: Duration) -> Result<Vec<IpAddr>, Refused> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let query = (name.to_string(), port);
    let spawned = std::thread::Builder::new()
        .name("notify-dns".into())
        .spawn(move || {
            let _ = tx.send(query.to_socket_addrs().map(|it| it.collect::<Vec<_>>()));
        });
    if let Err(e) = spawned {
        return Err(Refused::Unresolvable {
            host: name.to_string(),
            reason: format!("cannot start a lookup: {e}"),
        });
    }
    let unresolvable = |reason: String| Refused::Unresolvable {
        host: name.to_string(),
        reason,
    };
    let addrs = match rx.recv_timeout(timeout) {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(unresolvable(e.to_string())),
        Err(_) => return Err(unresolvable(format!("no answer within {timeout:?}"))),
    };
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    if ips.is_empty() {
        return Err(unresolvable("no addresses".into()));
    }
    Ok(ips)
}

#[cfg(test)]
mod tests;
