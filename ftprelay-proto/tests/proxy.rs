//! The PROXY protocol header: encode → parse round trips, every prefix of
//! a header "need more" (never a byte past it), and arbitrary bytes never
//! panic. The properties live in `ftprelay_proto::fuzzing`, shared with the
//! `proxy_header` fuzz target.

use std::net::{IpAddr, SocketAddr};

use ftprelay_proto::fuzzing;
use ftprelay_proto::proxy::{
    ProxyHeader, ProxyHeaderReader, ProxyParse, ProxyStep, ProxyVersion, parse_proxy_header,
};
use proptest::prelude::*;

/// A header of either version: a client's IPv4 or IPv6 addresses, or none.
fn header() -> impl Strategy<Value = ProxyHeader> {
    let version = prop_oneof![Just(ProxyVersion::V1), Just(ProxyVersion::V2)];
    let v4 =
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d)));
    let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>())
        .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d)));
    let ips = prop_oneof![v4.prop_map(Some), v6.prop_map(Some), Just(None)];
    (version, ips, any::<u16>(), any::<u16>()).prop_map(|(version, ips, sport, dport)| match ips {
        Some((source, destination)) => ProxyHeader::proxied(
            version,
            SocketAddr::new(source, sport),
            SocketAddr::new(destination, dport),
        )
        .expect("same family"),
        None => ProxyHeader::local(version),
    })
}

/// `header` encoded, a v2 one with `tlvs` appended (and its length grown
/// to match): TLVs are skipped.
fn encoded(header: &ProxyHeader, tlvs: &[u8]) -> Vec<u8> {
    let mut bytes = header.encode();
    if header.version() == ProxyVersion::V2 {
        let length = u16::from_be_bytes([bytes[14], bytes[15]]) + tlvs.len() as u16;
        bytes[14..16].copy_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(tlvs);
    }
    bytes
}

proptest! {
    #[test]
    fn headers_round_trip(
        header in header(),
        tlvs in prop::collection::vec(any::<u8>(), 0..200),
        after in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = encoded(&header, &tlvs);
        let length = bytes.len();
        let stream = [bytes.as_slice(), &after].concat();
        prop_assert_eq!(
            parse_proxy_header(&stream),
            Ok(ProxyParse::Complete { header, length })
        );
        fuzzing::assert_proxy_prefixes_incomplete(&bytes);
        prop_assert_eq!(fuzzing::read_proxy_header(&stream), Ok(Some((header, length))));
    }

    #[test]
    fn the_reader_takes_any_split(
        header in header(),
        tlvs in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(1usize..40, 1..20),
    ) {
        // Fed in chunks of any size (more than it wants too), the reader
        // says which bytes of the last chunk were the header's.
        let bytes = encoded(&header, &tlvs);
        let stream = [bytes.as_slice(), b"USER anonymous\r\n"].concat();
        let mut reader = ProxyHeaderReader::new();
        let (mut at, mut cuts) = (0, cuts.into_iter().cycle());
        let done = loop {
            let end = stream.len().min(at + cuts.next().unwrap_or(1));
            let step = reader.push(&stream[at..end]);
            prop_assert!(step.is_ok(), "{:?}", step);
            if let Ok(ProxyStep::Done { header: got, used }) = step {
                break (got, at + used);
            }
            prop_assert!(end < stream.len(), "the stream ended before the header");
            at = end;
        };
        prop_assert_eq!(done, (header, bytes.len()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::proxy_header(&data);
    }

    #[test]
    fn bytes_after_a_signature_never_panic(
        v2 in any::<bool>(),
        rest in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let signature: &[u8] = if v2 { &ftprelay_proto::proxy::V2_SIGNATURE } else { b"PROXY " };
        fuzzing::proxy_header(&[signature, &rest].concat());
    }
}
