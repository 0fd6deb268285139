//! IKEv2 message fragmentation (RFC 7383) between two engines in the in-memory network of
//! `common`: IKE_AUTH in fragments, with fragments lost, reordered, duplicated and corrupted.
mod common;

use common::*;
use control::ikev2::{EngineConfig, Event};
use control::wire::ikev2::{Message, NotifyType, Payload};

const SIZE: usize = 128;

fn pair_with(a_size: Option<usize>, b_size: Option<usize>, fate: FateFn) -> Pair {
    let mut a = EngineConfig::new(vec![peer("to-b", "a.example", "b.example", 1, 2)]);
    let mut b = EngineConfig::new(vec![peer("from-a", "b.example", "a.example", 2, 1)]);
    a.fragment_size = a_size;
    b.fragment_size = b_size;
    let mut pair = Pair::new(a, b);
    pair.fate = fate;
    pair.initiate();
    // Let retransmissions happen, but stop once both ends are up, before liveness checks.
    for _ in 0..8 {
        let up = |events: &[Event]| {
            events
                .iter()
                .any(|e| matches!(e, Event::IkeSaEstablished { .. }))
        };
        if up(&pair.a_events) && up(&pair.b_events) {
            break;
        }
        pair.run(1, true);
    }
    pair
}

fn fragmenting(fate: FateFn) -> Pair {
    pair_with(Some(SIZE), Some(SIZE), fate)
}

/// (fragment number, total) of a logged datagram, if it is an SKF message.
fn fragment(bytes: &[u8]) -> Option<(u16, u16)> {
    match Message::parse(bytes).ok()?.payloads.last()? {
        Payload::EncryptedFragment(f) => Some((f.number, f.total)),
        _ => None,
    }
}

/// The IKE_AUTH request's fragment count, from the first fragment on the wire.
fn request_fragments(pair: &Pair) -> usize {
    fragment(&pair.log[2].bytes)
        .expect("IKE_AUTH request in fragments")
        .1 as usize
}

#[test]
fn ike_auth_goes_in_fragments_no_larger_than_the_fragment_size() {
    let pair = fragmenting(Box::new(|_, _| Fate::Deliver));
    pair.assert_established();
    let announced = |bytes: &[u8]| {
        Message::parse(bytes).unwrap().payloads.iter().any(|p| {
            matches!(p, Payload::Notify(n) if n.kind == NotifyType::Ikev2FragmentationSupported)
        })
    };
    assert!(announced(&pair.log[0].bytes) && announced(&pair.log[1].bytes));
    let k = request_fragments(&pair);
    assert!(k >= 2, "{k} fragments");
    let fragments: Vec<(u16, u16)> = pair.log[2..]
        .iter()
        .filter_map(|t| fragment(&t.bytes))
        .collect();
    assert_eq!(
        fragments.len(),
        pair.log.len() - 2,
        "every IKE_AUTH datagram is a fragment"
    );
    assert!(pair
        .log
        .iter()
        .all(|t| t.bytes.len() <= SIZE || fragment(&t.bytes).is_none()));
    assert!(pair.log[2..].iter().all(|t| t.bytes.len() <= SIZE));
    let numbers: Vec<u16> = fragments[..k].iter().map(|f| f.0).collect();
    assert_eq!(numbers, (1..=k as u16).collect::<Vec<_>>());
    assert_eq!(pair.a.stats().retransmissions_sent, 0);
}

#[test]
fn a_lost_fragment_is_recovered_by_retransmitting_the_message() {
    // Datagram 3 is the second fragment of the IKE_AUTH request.
    let pair = fragmenting(Box::new(
        |n, _| if n == 3 { Fate::Drop } else { Fate::Deliver },
    ));
    pair.assert_established();
    assert_eq!(pair.a.stats().retransmissions_sent, 1);
}

#[test]
fn reordered_and_duplicated_fragments_are_reassembled() {
    // The first fragment arrives after the others; the second twice.
    let pair = fragmenting(Box::new(|n, _| match n {
        2 => Fate::Delay,
        3 => Fate::Duplicate,
        _ => Fate::Deliver,
    }));
    pair.assert_established();
    assert_eq!(pair.a.stats().retransmissions_sent, 0);
    assert_eq!(pair.b.stats().retransmitted_requests_answered, 0);
}

#[test]
fn a_corrupted_fragment_is_dropped_before_reassembly_and_the_retransmission_recovers() {
    let pair = fragmenting(Box::new(
        |n, _| if n == 2 { Fate::Corrupt } else { Fate::Deliver },
    ));
    pair.assert_established();
    assert_eq!(pair.b.stats().integrity_failures, 1);
    assert_eq!(pair.a.stats().retransmissions_sent, 1);
}

#[test]
fn a_request_retransmitted_in_fragments_is_answered_once() {
    // Lose the first fragment of B's IKE_AUTH response: A resends all its request fragments,
    // and B answers on the first of them only (RFC 7383 2.6.1).
    let mut dropped = false;
    let pair = fragmenting(Box::new(move |_, t| {
        let first = fragment(&t.bytes).is_some_and(|f| f.0 == 1);
        if !dropped && first && is_response(&t.bytes) {
            dropped = true;
            return Fate::Drop;
        }
        Fate::Deliver
    }));
    pair.assert_established();
    assert_eq!(pair.a.stats().retransmissions_sent, 1);
    assert_eq!(pair.b.stats().retransmitted_requests_answered, 1);
    let responses: Vec<&[u8]> = pair
        .log
        .iter()
        .map(|t| t.bytes.as_slice())
        .filter(|b| is_response(b))
        .collect();
    let response_fragments = fragment(responses[1])
        .expect("IKE_AUTH response in fragments")
        .1;
    // The IKE_SA_INIT response, then the IKE_AUTH response twice (not once per request
    // fragment).
    assert_eq!(responses.len(), 1 + 2 * response_fragments as usize);
}

fn is_response(bytes: &[u8]) -> bool {
    Message::parse(bytes).is_ok_and(|m| m.header.flags.response())
}

#[test]
fn without_the_peers_support_nothing_is_fragmented() {
    for (a_size, b_size) in [(Some(SIZE), None), (None, Some(SIZE))] {
        let pair = pair_with(a_size, b_size, Box::new(|_, _| Fate::Deliver));
        pair.assert_established();
        assert_eq!(pair.sent, 4);
        assert!(pair.log.iter().all(|t| fragment(&t.bytes).is_none()));
        assert!(pair.log[2].bytes.len() > SIZE);
        assert!(!pair
            .a_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaFailed { .. })));
    }
}
