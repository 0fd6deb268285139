//! Rekeying (RFC 7296 2.8, 2.18): what an IKE SA keeps while it is being replaced, the new IKE
//! SA keyed from the old SK_d, the hand-over of the child SAs to it, and the rule that settles two
//! rekeys of the same SA started by both ends at once (2.8.1 for child SAs, 2.8.2 for IKE SAs).
use super::engine::{Ctx, Event};
use super::error::Failure;
use super::proposal::IkeAlgorithms;
use super::sa::{IkeSa, Phase, Request};
use super::tasks::requests::send_queued;
use super::timer::{Timer, Timers};
use crate::crypto::{rekey_skeyseed, DhKey};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// A rekey by the peer that we answered while our own rekey of the same SA was in flight: our SPI
/// of what its exchange created and the lower of its two nonces.
pub(crate) struct Answered<Spi> {
    pub new_spi: Spi,
    pub lowest_nonce: Vec<u8>,
}

/// Our CREATE_CHILD_SA replacing this IKE SA, in flight: our SPI of the new SA, our nonce and
/// our Diffie-Hellman key.
pub(crate) struct PendingIkeRekey {
    pub new_spi: u64,
    pub ni: Vec<u8>,
    pub dh: DhKey,
}

#[derive(Default)]
pub(crate) struct RekeyState {
    pub pending: Option<PendingIkeRekey>,
    /// The peer's rekey of this IKE SA answered while ours was pending (2.8.2).
    pub collision: Option<Answered<u64>>,
    /// Our SPI of the IKE SA that replaced this one: this one only waits for its delete.
    pub successor: Option<u64>,
    /// The lifetime timer was set once; it is not set again for this SA.
    pub lifetime_armed: bool,
    /// Our SPI of the IKE SA this one reauthenticates, deleted once this one is up (RFC 7296
    /// 2.8.3: make before break).
    pub reauth_of: Option<u64>,
    /// Requests the peer refused with TEMPORARY_FAILURE, sent again on `Timer::Retry`.
    pub deferred: Vec<Request>,
}

/// RFC 7296 2.25: a refused rekey is tried again after a random delay of 2 to 6 s, so that two
/// ends that refused each other do not meet again.
pub fn defer(ctx: &mut Ctx<'_>, sa: &mut IkeSa, request: Request) {
    let mut byte = [0u8; 1];
    ctx.rng.fill(&mut byte);
    let delay = Duration::from_millis(2000 + u64::from(byte[0]) * 4000 / 255);
    sa.rekey.deferred.push(request);
    if sa.timers.next_of(Timer::Retry).is_none() {
        sa.timers.set(Timer::Retry, ctx.now + delay);
    }
}

/// The lower of an exchange's two nonces.
pub fn lowest(ni: &[u8], nr: &[u8]) -> Vec<u8> {
    ni.min(nr).to_vec()
}

/// RFC 7296 2.8.1, 2.8.2: of two colliding rekeys, the exchange that carried the lowest of the
/// four nonces created the redundant SA, which the end that started that exchange deletes.
pub fn ours_is_redundant(our_lowest: &[u8], their_lowest: &[u8]) -> bool {
    our_lowest < their_lowest
}

/// Reports a settled collision.
pub fn report_collision(
    ctx: &mut Ctx<'_>,
    ike_spi: u64,
    child: Option<u32>,
    our_lowest: &[u8],
    their_lowest: &[u8],
) -> bool {
    let ours_redundant = ours_is_redundant(our_lowest, their_lowest);
    ctx.events.push_back(Event::RekeyCollision {
        ike_spi,
        child,
        ours_redundant,
    });
    ours_redundant
}

/// The SPIs, nonces and shared secret of the exchange that replaces an IKE SA.
pub struct NewIkeSa<'a> {
    pub initiator: bool,
    pub algorithms: IkeAlgorithms,
    pub spi_i: u64,
    pub spi_r: u64,
    pub ni: &'a [u8],
    pub nr: &'a [u8],
    pub g_ir: &'a [u8],
}

/// The established IKE SA that replaces `old`: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
/// with the old PRF, message IDs from zero (RFC 7296 2.18).
pub fn successor(ctx: &mut Ctx<'_>, old: &IkeSa, new: NewIkeSa<'_>) -> Result<IkeSa, Failure> {
    let old_keys = old.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let seed = rekey_skeyseed(old_keys.prf, &old_keys.ike.sk_d, new.g_ir, new.ni, new.nr);
    let mut sa = IkeSa {
        our_spi: if new.initiator { new.spi_i } else { new.spi_r },
        spi_i: new.spi_i,
        spi_r: new.spi_r,
        initiator: new.initiator,
        peer: old.peer,
        local: old.local,
        remote: old.remote,
        phase: Phase::Established,
        algorithms: Some(new.algorithms),
        keys: None,
        ni: new.ni.to_vec(),
        nr: new.nr.to_vec(),
        init_request: Vec::new(),
        init_response: Vec::new(),
        nat: old.nat,
        next_request_id: 0,
        expected_request_id: 0,
        cached_response: None,
        outstanding: None,
        queued: VecDeque::new(),
        children: Vec::new(),
        pending_child: None,
        correlation: None,
        correlated_with: old.correlated_with,
        timers: Timers::default(),
        last_heard: ctx.now,
        started_at: ctx.now,
        established_at: Some(ctx.now),
        initial_contact: false,
        fragmentation: old.fragmentation.successor(),
        rekey: RekeyState::default(),
    };
    sa.install_keys(&seed)?;
    ctx.arm_liveness(&mut sa);
    Ok(sa)
}

/// Requests that follow their child SAs to the new IKE SA; the ones about the old IKE SA stay.
fn follows_children(request: &Request) -> bool {
    matches!(
        request,
        Request::DeleteChild { .. }
            | Request::RekeyChild { .. }
            | Request::NewChild { .. }
            | Request::Liveness
            | Request::InvalidSpi { .. }
    )
}

/// Moves the child SAs of `old`, and the requests waiting for them, to `new` (RFC 7296 1.3.2:
/// the children of the old IKE SA belong to the new one) and sends what `new` has queued.
pub fn hand_over(ctx: &mut Ctx<'_>, old: &mut IkeSa, new: &mut IkeSa) {
    let waiting = old.queued.iter().chain(&old.rekey.deferred);
    if old.children.is_empty() && !waiting.clone().any(follows_children) {
        return;
    }
    for mut child in old.children.drain(..) {
        child.ike_spi = new.our_spi;
        new.children.push(child);
    }
    let (moving, staying) = old.queued.drain(..).partition(follows_children);
    old.queued = staying;
    new.queued.extend::<VecDeque<Request>>(moving);
    new.queued
        .extend(old.rekey.deferred.drain(..).filter(follows_children));
    let peer = ctx.peer_name(old);
    ctx.events.push_back(Event::IkeSaRekeyed {
        old_spi: old.our_spi,
        new_spi: new.our_spi,
        peer,
    });
    send_queued(ctx, new);
}

/// Hands what `sa` still holds over to its successor, if it has one in `sas`.
pub fn hand_over_to_successor(ctx: &mut Ctx<'_>, sa: &mut IkeSa, sas: &mut HashMap<u64, IkeSa>) {
    if let Some(new) = sa.rekey.successor.and_then(|spi| sas.get_mut(&spi)) {
        hand_over(ctx, sa, new);
    }
}

/// The peer deletes an IKE SA whose rekey collided with ours before we learnt the outcome of
/// ours: its rekey won (2.8.2), so the SA we answered is the successor.
pub fn settle_before_delete(ctx: &mut Ctx<'_>, sa: &mut IkeSa, sas: &mut HashMap<u64, IkeSa>) {
    if sa.rekey.successor.is_none() {
        sa.rekey.successor = sa.rekey.collision.take().map(|c| c.new_spi);
    }
    hand_over_to_successor(ctx, sa, sas);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_with_the_lowest_nonce_is_redundant() {
        let (a, b, c, d) = ([1u8, 9], [2u8, 0], [3u8], [0u8, 1, 2]);
        assert_eq!(lowest(&a, &b), a.to_vec());
        assert_eq!(lowest(&c, &d), d.to_vec());
        // Ours carried [0,1,2], the lowest of the four: ours is redundant, and the peer, doing
        // the same comparison from its side, keeps its own.
        assert!(ours_is_redundant(&lowest(&c, &d), &lowest(&a, &b)));
        assert!(!ours_is_redundant(&lowest(&a, &b), &lowest(&c, &d)));
    }
}
