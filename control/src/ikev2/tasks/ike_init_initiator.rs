//! IKE_SA_INIT as initiator (RFC 7296 1.2), with the COOKIE (2.6) and INVALID_KE_PAYLOAD (1.3)
//! retries and NAT detection (2.23).
use crate::crypto::DhKey;
use crate::ikev2::engine::{Ctx, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::fragmentation;
use crate::ikev2::nat::{nat_detected, nat_notifies};
use crate::ikev2::payloads::{error_notify, ke, nonce, notifies, requested_group, sa_payload};
use crate::ikev2::proposal::{accept_ike_answer, ike_sa_payload};
use crate::ikev2::sa::{IkeSa, Phase, Request};
use crate::ikev2::tasks::ike_auth_initiator;
use crate::ikev2::timer::Timers;
use crate::wire::ikev2::{
    DhGroup, ExchangeType, KeyExchange, Message, Notify, NotifyType, Payload,
};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// RFC 7296 2.10: nonces of at least half the PRF's key size; 32 bytes covers every PRF here.
pub const NONCE_LEN: usize = 32;
/// RFC 3947 / RFC 7296 2.23: IKE moves to this port once a NAT is detected.
pub const NAT_T_PORT: u16 = 4500;

pub fn start(
    ctx: &mut Ctx<'_>,
    peer: usize,
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<IkeSa, Failure> {
    let config = &ctx.config.peers[peer];
    let group = config
        .ike_proposals
        .first()
        .and_then(|p| p.groups.first())
        .copied()
        .ok_or(Failure::NoProposalChosen)?;
    let dh = DhKey::generate(group, ctx.rng)?;
    let our_spi = ctx.random_spi();
    let ni = ctx.random(NONCE_LEN);
    let mut sa = IkeSa {
        our_spi,
        spi_i: our_spi,
        spi_r: 0,
        initiator: true,
        peer,
        local,
        remote,
        phase: Phase::InitSent { dh, cookie: None },
        algorithms: None,
        keys: None,
        ni,
        nr: Vec::new(),
        init_request: Vec::new(),
        init_response: Vec::new(),
        nat: false,
        next_request_id: 0,
        expected_request_id: 0,
        cached_response: None,
        outstanding: None,
        queued: VecDeque::new(),
        children: Vec::new(),
        pending_child: None,
        correlation: None,
        correlated_with: None,
        timers: Timers::default(),
        last_heard: ctx.now,
        started_at: ctx.now,
        established_at: None,
        initial_contact: false,
        fragmentation: Default::default(),
        rekey: Default::default(),
    };
    send_request(ctx, &mut sa)?;
    Ok(sa)
}

/// HDR, [N(COOKIE)], SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP).
fn send_request(ctx: &mut Ctx<'_>, sa: &mut IkeSa) -> Result<(), Failure> {
    let Phase::InitSent { dh, cookie } = &sa.phase else {
        return Err(Failure::Missing("IKE_SA_INIT state"));
    };
    let config = &ctx.config.peers[sa.peer];
    let mut payloads = Vec::new();
    if let Some(cookie) = cookie {
        // RFC 7296 2.6: the COOKIE notification comes first.
        payloads.push(Payload::Notify(Notify::new(
            NotifyType::Cookie,
            cookie.clone(),
        )));
    }
    payloads.push(Payload::Sa(ike_sa_payload(&config.ike_proposals, &[])));
    payloads.push(Payload::Ke(KeyExchange {
        group: dh.group(),
        data: dh.public_value()?,
    }));
    payloads.push(Payload::Nonce(sa.ni.clone()));
    payloads.extend(nat_notifies(sa.spi_i, 0, sa.local, sa.remote));
    payloads.extend(crate::ikev2::auth::sa_init_payloads(config, false));
    payloads.extend(fragmentation::announce(ctx.config));
    let bytes = Message {
        header: sa.header(ExchangeType::IkeSaInit, false, 0),
        payloads,
    }
    .to_bytes()?;
    sa.init_request = bytes.clone();
    ctx.send_request(sa, Request::SaInit, vec![bytes]);
    Ok(())
}

pub fn handle_response(ctx: &mut Ctx<'_>, sa: &mut IkeSa, message: &Message, bytes: &[u8]) -> Keep {
    match process(ctx, sa, message, bytes) {
        Ok(()) => Keep::Yes,
        Err(failure) => {
            ctx.fail(sa, failure);
            Keep::Remove
        }
    }
}

fn offered(ctx: &Ctx<'_>, sa: &IkeSa, group: DhGroup) -> bool {
    ctx.config.peers[sa.peer]
        .ike_proposals
        .iter()
        .any(|p| p.groups.contains(&group))
}

fn process(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message: &Message,
    bytes: &[u8],
) -> Result<(), Failure> {
    let payloads = &message.payloads;
    if let Some(cookie) = notifies(payloads, NotifyType::Cookie).next() {
        if let Phase::InitSent { cookie: ours, .. } = &mut sa.phase {
            *ours = Some(cookie.data.clone());
        }
        return send_request(ctx, sa);
    }
    if let Some(group) = requested_group(payloads) {
        let Phase::InitSent { dh, cookie } = &sa.phase else {
            return Err(Failure::Missing("IKE_SA_INIT state"));
        };
        // RFC 7296 1.3: retry only with a group we proposed and did not already send.
        if group == dh.group() || !offered(ctx, sa, group) {
            return Err(Failure::PeerError(NotifyType::InvalidKePayload));
        }
        let cookie = cookie.clone();
        sa.phase = Phase::InitSent {
            dh: DhKey::generate(group, ctx.rng)?,
            cookie,
        };
        return send_request(ctx, sa);
    }
    if let Some(error) = error_notify(payloads) {
        return Err(Failure::PeerError(error));
    }
    let answer = sa_payload(payloads).ok_or(Failure::Missing("SA"))?;
    let their_ke = ke(payloads).ok_or(Failure::Missing("KE"))?;
    let nr = nonce(payloads).ok_or(Failure::Missing("Nonce"))?;
    let algorithms = accept_ike_answer(answer, &ctx.config.peers[sa.peer].ike_proposals)?;
    let Phase::InitSent { dh, .. } = &sa.phase else {
        return Err(Failure::Missing("IKE_SA_INIT state"));
    };
    if their_ke.group != dh.group() || algorithms.group != dh.group() || message.header.spi_r == 0 {
        return Err(Failure::NoProposalChosen);
    }
    let g_ir = dh.shared_secret(&their_ke.data)?;
    sa.spi_r = message.header.spi_r;
    sa.nr = nr.clone();
    sa.algorithms = Some(algorithms);
    sa.init_response = bytes.to_vec();
    sa.nat = nat_detected(payloads, sa.spi_i, sa.spi_r, sa.local, sa.remote);
    sa.fragmentation = fragmentation::negotiated(ctx.config, payloads);
    sa.derive_keys(&g_ir)?;
    ctx.request_done(sa);
    if sa.nat {
        // RFC 7296 2.23: float to port 4500 for everything after IKE_SA_INIT.
        sa.local.set_port(NAT_T_PORT);
        sa.remote.set_port(NAT_T_PORT);
    }
    ctx.vendor_ids(sa, payloads);
    ike_auth_initiator::start(ctx, sa)
}
