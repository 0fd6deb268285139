//! IKE_SA_INIT as responder (RFC 7296 1.2): cookies under load (2.6), INVALID_KE_PAYLOAD (1.3),
//! NAT detection (2.23). Refusals keep no state.
use crate::crypto::DhKey;
use crate::ikev2::engine::{Ctx, Engine, Transmit};
use crate::ikev2::fragmentation;
use crate::ikev2::nat::{nat_detected, nat_notifies};
use crate::ikev2::payloads::{ke, nonce, notifies, sa_payload};
use crate::ikev2::proposal::{ike_answer, select_ike};
use crate::ikev2::sa::{IkeSa, Phase};
use crate::ikev2::tasks::ike_init_initiator::NONCE_LEN;
use crate::ikev2::timer::{Timer, Timers};
use crate::wire::ikev2::{
    ExchangeType, Flags, Header, KeyExchange, Message, Notify, NotifyType, Payload, PayloadType,
    IKEV2_VERSION,
};
use aws_lc_rs::constant_time;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// The peer resent its IKE_SA_INIT request: resend our answer.
pub fn retransmitted(ctx: &mut Ctx<'_>, sa: Option<&IkeSa>, header: &Header) {
    if let Some(sa) = sa.filter(|sa| header.message_id == 0 && !sa.init_response.is_empty()) {
        ctx.stats.retransmitted_requests_answered += 1;
        ctx.transmits.push_back(Transmit {
            local: sa.local,
            remote: sa.remote,
            bytes: sa.init_response.clone(),
        });
    }
}

/// An unencrypted answer that refuses the request with one notification.
fn refuse(
    ctx: &mut Ctx<'_>,
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    kind: NotifyType,
    data: Vec<u8>,
) {
    let header = Header {
        spi_i,
        spi_r: 0,
        next_payload: PayloadType::None,
        version: IKEV2_VERSION,
        exchange: ExchangeType::IkeSaInit,
        flags: Flags::new(false, true),
        message_id: 0,
        length: 0,
    };
    let message = Message {
        header,
        payloads: vec![Payload::Notify(Notify::new(kind, data))],
    };
    if let Ok(bytes) = message.to_bytes() {
        ctx.transmits.push_back(Transmit {
            local,
            remote,
            bytes,
        });
    }
}

/// Handles a new IKE_SA_INIT request; returns the half-open SA when one is created.
pub fn handle(
    ctx: &mut Ctx<'_>,
    cookie_secret: &[u8],
    half_open: usize,
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &[u8],
) -> Option<IkeSa> {
    let Ok(message) = Message::parse(bytes) else {
        ctx.stats.malformed += 1;
        return None;
    };
    let header = message.header;
    let payloads = &message.payloads;
    let Some(peer) = ctx
        .config
        .peers
        .iter()
        .position(|p| p.remote_addr.is_none_or(|a| a == remote.ip()))
    else {
        ctx.stats.negotiations_failed += 1;
        return None;
    };
    let (Some(proposed), Some(their_ke), Some(ni), 0, 0) = (
        sa_payload(payloads),
        ke(payloads),
        nonce(payloads),
        header.message_id,
        header.spi_r,
    ) else {
        ctx.stats.malformed += 1;
        refuse(
            ctx,
            local,
            remote,
            header.spi_i,
            NotifyType::InvalidSyntax,
            vec![],
        );
        return None;
    };
    if half_open >= ctx.config.cookie_threshold {
        let expected = Engine::cookie(cookie_secret, ni, remote, header.spi_i);
        let valid = notifies(payloads, NotifyType::Cookie)
            .next()
            .is_some_and(|c| constant_time::verify_slices_are_equal(&c.data, &expected).is_ok());
        if !valid {
            ctx.stats.cookies_sent += 1;
            refuse(
                ctx,
                local,
                remote,
                header.spi_i,
                NotifyType::Cookie,
                expected,
            );
            return None;
        }
    }
    let config = &ctx.config.peers[peer];
    let (number, algorithms) = match select_ike(proposed, &config.ike_proposals) {
        Ok(choice) => choice,
        Err(_) => {
            ctx.stats.negotiations_failed += 1;
            refuse(
                ctx,
                local,
                remote,
                header.spi_i,
                NotifyType::NoProposalChosen,
                vec![],
            );
            return None;
        }
    };
    if their_ke.group != algorithms.group {
        let group = u16::from(algorithms.group).to_be_bytes().to_vec();
        refuse(
            ctx,
            local,
            remote,
            header.spi_i,
            NotifyType::InvalidKePayload,
            group,
        );
        return None;
    }
    let dh = DhKey::generate(algorithms.group, ctx.rng).ok()?;
    let Ok(g_ir) = dh.shared_secret(&their_ke.data) else {
        refuse(
            ctx,
            local,
            remote,
            header.spi_i,
            NotifyType::InvalidSyntax,
            vec![],
        );
        return None;
    };
    let our_spi = ctx.random_spi();
    let mut sa = IkeSa {
        our_spi,
        spi_i: header.spi_i,
        spi_r: our_spi,
        initiator: false,
        peer,
        local,
        remote,
        phase: Phase::HalfOpen,
        algorithms: Some(algorithms),
        keys: None,
        ni: ni.clone(),
        nr: ctx.random(NONCE_LEN),
        init_request: bytes.to_vec(),
        init_response: Vec::new(),
        nat: nat_detected(payloads, header.spi_i, 0, local, remote),
        next_request_id: 0,
        expected_request_id: 1,
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
        fragmentation: fragmentation::negotiated(ctx.config, payloads),
        rekey: Default::default(),
    };
    let mut answer = vec![
        Payload::Sa(ike_answer(number, &algorithms, &[])),
        Payload::Ke(KeyExchange {
            group: algorithms.group,
            data: dh.public_value().ok()?,
        }),
        Payload::Nonce(sa.nr.clone()),
    ];
    answer.extend(nat_notifies(sa.spi_i, sa.spi_r, local, remote));
    answer.extend(crate::ikev2::auth::sa_init_payloads(config, true));
    answer.extend(fragmentation::announce(ctx.config));
    let response = Message {
        header: sa.header(ExchangeType::IkeSaInit, true, 0),
        payloads: answer,
    }
    .to_bytes()
    .ok()?;
    sa.derive_keys(&g_ir).ok()?;
    sa.init_response = response.clone();
    sa.timers
        .set(Timer::HalfOpen, ctx.now + ctx.config.half_open_timeout);
    ctx.vendor_ids(&sa, payloads);
    ctx.transmits.push_back(Transmit {
        local,
        remote,
        bytes: response,
    });
    Some(sa)
}
