//! Test fixtures: the operator and PSC stand-in of `mss_testing::lps`, and a DNS server answering from a zone
//! file.
#![allow(dead_code)]

use std::net::SocketAddr;

#[allow(unused_imports)] // each test binary uses a part
pub use mss_testing::lps::*;
#[allow(unused_imports)]
pub use mss_testing::{repo_root, unavailable};

/// A UDP DNS server answering from a tiny zone file (`name TYPE data` per line; SRV and A only).
pub struct ZoneServer {
    pub addr: SocketAddr,
}

impl ZoneServer {
    pub fn start(zone: &str) -> ZoneServer {
        use hickory_proto::op::{Message, MessageType, ResponseCode};
        use hickory_proto::rr::rdata::{A, SRV};
        use hickory_proto::rr::{Name, RData, Record, RecordType};

        let mut records: Vec<(String, RData)> = Vec::new();
        for line in zone
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = f[0].to_ascii_lowercase();
            let rdata = match f[1] {
                "SRV" => RData::SRV(SRV::new(
                    f[2].parse().expect("prio"),
                    f[3].parse().expect("weight"),
                    f[4].parse().expect("port"),
                    Name::from_ascii(f[5]).expect("target"),
                )),
                "A" => RData::A(A(f[2].parse().expect("ip"))),
                other => panic!("zone: unsupported type {other}"),
            };
            records.push((name, rdata));
        }
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let addr = sock.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut resp = Message::new(
                    query.metadata.id,
                    MessageType::Response,
                    query.metadata.op_code,
                );
                resp.metadata.authoritative = true;
                resp.metadata.recursion_desired = query.metadata.recursion_desired;
                let mut known = false;
                for q in &query.queries {
                    resp.add_query(q.clone());
                    let qname = q.name().to_ascii().to_ascii_lowercase();
                    for (name, rdata) in &records {
                        if *name == qname {
                            known = true;
                            if rdata.record_type() == q.query_type()
                                || q.query_type() == RecordType::ANY
                            {
                                resp.add_answer(Record::from_rdata(
                                    q.name().clone(),
                                    60,
                                    rdata.clone(),
                                ));
                            }
                        }
                    }
                }
                if !known {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, peer);
                }
            }
        });
        ZoneServer { addr }
    }
}
