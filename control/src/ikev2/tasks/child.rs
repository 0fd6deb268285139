//! Child SA keys and the record handed to the SA manager (RFC 7296 2.17).
use crate::crypto::{child_keymat, KeyLengths};
use crate::ikev2::error::Failure;
use crate::ikev2::sa::{ChildSa, DirectionKeys, IkeSa};
use crate::wire::ikev2::TrafficSelector;
use shared::sa::{Suite, UdpEncap};

/// Derives the KEYMAT of a child SA negotiated on `sa` without PFS. `local_ts`/`remote_ts` are
/// this end's view.
pub fn establish(
    sa: &IkeSa,
    peer: String,
    suite: Suite,
    inbound_spi: u32,
    outbound_spi: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
) -> Result<ChildSa, Failure> {
    let keys = sa.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let lengths = KeyLengths {
        encr: suite.enc_key_len(),
        integ: suite.auth_key_len(),
    };
    let keymat = child_keymat(keys.prf, &keys.ike.sk_d, None, &sa.ni, &sa.nr, lengths)?;
    let initiator_to_responder = DirectionKeys {
        encr: keymat.initiator_encr,
        integ: keymat.initiator_integ,
    };
    let responder_to_initiator = DirectionKeys {
        encr: keymat.responder_encr,
        integ: keymat.responder_integ,
    };
    let (outbound, inbound) = if sa.initiator {
        (initiator_to_responder, responder_to_initiator)
    } else {
        (responder_to_initiator, initiator_to_responder)
    };
    Ok(ChildSa {
        ike_spi: sa.our_spi,
        peer,
        inbound_spi,
        outbound_spi,
        suite,
        inbound,
        outbound,
        local_ts,
        remote_ts,
        local: sa.local,
        remote: sa.remote,
        encap: sa.nat.then_some(UdpEncap {
            src_port: sa.local.port(),
            dst_port: sa.remote.port(),
        }),
    })
}
