//! The client's address behind a reverse proxy. A hospital often puts its own proxy (nginx, HAProxy, the
//! organisation's gateway) in front of the service, on the same machine or not: every request then comes
//! from the proxy, and the per-address limits (bad keys, keyless directory) and the audit trail would take
//! all its clients for one — one client presenting bad keys would lock every other out. The proxies named
//! in `[access] trusted_proxies` are believed about whom they forward for: the client is the rightmost
//! address of `Forwarded` (RFC 7239), else of `X-Forwarded-For`, that is not itself a trusted proxy. From
//! any other peer these headers are ignored: anybody can write them.
//
// Written here rather than taken from a crate: the crates that do it (axum-client-ip…) pick one header
// by configuration and trust either every hop or a count of them; the rule above (rightmost untrusted, by
// address) is the one that cannot be fooled by what a client writes in the header, and it is a few lines.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Hops read from the right at most: a longer chain is not a proxy's.
const MAX_HOPS: usize = 32;

/// `[access] trusted_proxies` read: each entry an address (`127.0.0.1`, `::1`) or a network
/// (`10.0.0.0/8`); the error names the entry and says why.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    format!(
                        "`{e}` is neither an address (10.0.0.5, ::1) nor a network (10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

/// Who the request is from: `peer` itself, unless it is a trusted proxy naming the client it forwards for.
pub(crate) fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops(headers).into_iter().rev().take(MAX_HOPS) {
        match hop {
            Some(a) if is_trusted(&a) => client = a,
            Some(a) => return a,
            // `unknown`, an obfuscated name or garbage: the nearest hop known is as far as one can tell
            None => return client,
        }
    }
    client
}

/// The hops a request went through, leftmost (the original client) first: `Forwarded`'s `for=` if the
/// header is there, else `X-Forwarded-For`. `None` for a hop that is not an address.
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<Option<String>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| match v {
                Some(v) => v.split(',').map(forwarded_for).collect(),
                None => vec![None],
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|v| match v {
            Some(v) => v.split(',').map(node).collect(),
            None => vec![None],
        })
        .collect()
}

/// The `for=` of one element of `Forwarded` (`for=192.0.2.60;proto=https;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node(value))
            .flatten()
    })
}

/// An address as proxies write it: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// quoted or not.
fn node(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    let address = if let Some(rest) = v.strip_prefix('[') {
        rest.split_once(']')?.0
    } else if v.matches(':').count() == 1 {
        v.split_once(':')?.0
    } else {
        v
    };
    address.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .expect("a test network")
            })
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().expect("a header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &xff, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("10.2.3.4"), &xff, &trusted),
            ip("203.0.113.7")
        );
        // anybody else may write the header: ignored
        assert_eq!(
            client_address(ip("198.51.100.9"), &xff, &trusted),
            ip("198.51.100.9")
        );
        // nothing trusted: nothing believed
        assert_eq!(client_address(ip("127.0.0.1"), &xff, &[]), ip("127.0.0.1"));
        // a trusted proxy that says nothing: the proxy
        assert_eq!(
            client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_whatever_the_client_wrote() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        // the client wrote a forged first hop; its own address was appended by the proxies
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &chain, &trusted),
            ip("203.0.113.7")
        );
        // the same over two header lines
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
        ]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &split, &trusted),
            ip("203.0.113.7")
        );
        // every hop trusted: the leftmost
        let inside = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &inside, &trusted),
            ip("10.9.9.9")
        );
        // garbage or `unknown` right of the trusted hops: the nearest trusted hop
        let junk = headers(&[("x-forwarded-for", "203.0.113.7, not-an-address, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &junk, &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_is_read_first_with_ports_quotes_and_ipv6() {
        let trusted = nets(&["::1", "127.0.0.1"]);
        let both = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.43;proto=https, for="[2001:db8:cafe::17]:4711";by=127.0.0.1"#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            client_address(ip("::1"), &both, &trusted),
            ip("2001:db8:cafe::17")
        );
        let port = headers(&[("forwarded", "For=\"192.0.2.60:8080\"")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &port, &trusted),
            ip("192.0.2.60")
        );
        let hidden = headers(&[("forwarded", "for=_hidden, for=127.0.0.1")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &hidden, &trusted),
            ip("127.0.0.1")
        );
        // an IPv4 peer written as IPv6 by a dual-stack listener counts as itself
        let mapped = headers(&[("x-forwarded-for", "::ffff:203.0.113.7")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &mapped, &trusted),
            ip("203.0.113.7")
        );
    }

    proptest! {
        /// Whatever the headers say, the answer is the peer or an address they name, and a peer that is
        /// not trusted is always itself.
        #[test]
        fn the_answer_is_the_peer_or_a_named_hop(
            forwarded in proptest::option::of("[ -~]{0,80}"),
            xff in proptest::option::of("[0-9a-f.:, \\[\\]\"]{0,80}"),
            trusted_peer in any::<bool>(),
        ) {
            let trusted = nets(&["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]);
            let mut h = HeaderMap::new();
            for (name, value) in [("forwarded", &forwarded), ("x-forwarded-for", &xff)] {
                if let Some(v) = value.as_deref().and_then(|v| v.parse().ok()) {
                    h.append(name, v);
                }
            }
            let peer = if trusted_peer { ip("127.0.0.1") } else { ip("198.51.100.9") };
            let client = client_address(peer, &h, &trusted);
            if trusted_peer {
                let named = hops(&h).into_iter().flatten().any(|a| a == client);
                prop_assert!(client == peer || named, "{client} from {h:?}");
            } else {
                prop_assert_eq!(client, peer);
            }
        }
    }
}
