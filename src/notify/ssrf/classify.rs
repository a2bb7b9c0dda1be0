//! Which rule, if any, refuses an address: the IPv4 and IPv6 special ranges and the cloud
//! metadata addresses. An IPv4 address carried in an IPv6 one (mapped, compatible, translated,
//! 6to4) is judged as itself; NAT64 and Teredo prefixes are refused whole.

use super::Rule;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Addresses of cloud metadata and instance services (AWS, GCP, Azure, Oracle, OpenStack,
/// DigitalOcean at 169.254.169.254; AWS ECS, DNS and NTP; Alibaba; AWS over IPv6; Oracle legacy).
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 169, 253),
    Ipv4Addr::new(169, 254, 169, 123),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x253),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x123),
];

/// The rule refusing `ip`, and the embedded IPv4 address when the refusal is about it;
/// `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<(Rule, Option<Ipv4Addr>)> {
    match ip {
        IpAddr::V4(a) => classify_v4(a).map(|r| (r, None)),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(a) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(a: Ipv6Addr, net: Ipv6Addr, bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    (u128::from(a) & mask) == (u128::from(net) & mask)
}

fn classify_v4(a: Ipv4Addr) -> Option<Rule> {
    if METADATA_V4.contains(&a) {
        return Some(Rule::Metadata);
    }
    let table: &[([u8; 4], u32, Rule)] = &[
        ([255, 255, 255, 255], 32, Rule::Broadcast),
        ([0, 0, 0, 0], 8, Rule::Unspecified),
        ([127, 0, 0, 0], 8, Rule::Loopback),
        ([10, 0, 0, 0], 8, Rule::Private),
        ([172, 16, 0, 0], 12, Rule::Private),
        ([192, 168, 0, 0], 16, Rule::Private),
        ([100, 64, 0, 0], 10, Rule::Cgnat),
        ([169, 254, 0, 0], 16, Rule::LinkLocal),
        ([192, 0, 0, 0], 24, Rule::Reserved),
        ([192, 0, 2, 0], 24, Rule::Documentation),
        ([198, 51, 100, 0], 24, Rule::Documentation),
        ([203, 0, 113, 0], 24, Rule::Documentation),
        ([198, 18, 0, 0], 15, Rule::Benchmarking),
        ([192, 88, 99, 0], 24, Rule::Reserved),
        ([224, 0, 0, 0], 4, Rule::Multicast),
        ([240, 0, 0, 0], 4, Rule::Reserved),
    ];
    table
        .iter()
        .find(|(net, bits, _)| in_v4(a, *net, *bits))
        .map(|(_, _, r)| *r)
}

/// An IPv6 address embedding an IPv4 one is judged by the IPv4 address: what a dual-stack
/// socket or a tunnel would actually reach.
fn embedded(rule_v4: Option<Rule>, v4: Ipv4Addr) -> Option<(Rule, Option<Ipv4Addr>)> {
    rule_v4.map(|r| (r, Some(v4)))
}

fn classify_v6(a: Ipv6Addr) -> Option<(Rule, Option<Ipv4Addr>)> {
    if METADATA_V6.contains(&a) {
        return Some((Rule::Metadata, None));
    }
    if a.is_unspecified() {
        return Some((Rule::Unspecified, None));
    }
    if a.is_loopback() {
        return Some((Rule::Loopback, None));
    }
    let o = a.octets();
    let last_v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible) and ::ffff:0:a.b.c.d (translated).
    if in_v6(a, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || in_v6(a, Ipv6Addr::UNSPECIFIED, 96)
        || in_v6(a, Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96)
    {
        return embedded(classify_v4(last_v4), last_v4);
    }
    // 6to4 (2002:AABB:CCDD::/48) carries the IPv4 address in bits 16–47.
    if in_v6(a, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let v4 = Ipv4Addr::new(o[2], o[3], o[4], o[5]);
        return embedded(classify_v4(v4), v4);
    }
    let table: &[(Ipv6Addr, u32, Rule)] = &[
        // NAT64 gateways translate to any IPv4 address, private ones included.
        (
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
            96,
            Rule::Nat64,
        ),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            Rule::Nat64,
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            Rule::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            Rule::Documentation,
        ),
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            Rule::Documentation,
        ),
        (
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
            48,
            Rule::Benchmarking,
        ),
        (
            Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
            28,
            Rule::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0),
            28,
            Rule::Reserved,
        ),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Rule::Teredo),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            Rule::UniqueLocal,
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            Rule::LinkLocal,
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            Rule::SiteLocal,
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            Rule::Multicast,
        ),
    ];
    if let Some((_, _, r)) = table.iter().find(|(net, bits, _)| in_v6(a, *net, *bits)) {
        return Some((*r, None));
    }
    // Only 2000::/3 is global unicast; everything else is unassigned or special.
    if !in_v6(a, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some((Rule::Reserved, None));
    }
    None
}
