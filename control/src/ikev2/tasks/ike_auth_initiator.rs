//! IKE_AUTH as initiator with a pre-shared key or a certificate (RFC 7296 1.2, 2.15) and the
//! first child SA.
use crate::ikev2::auth::{our_auth, peer_proves, OurProof, PeerAnnouncements, PeerProof};
use crate::ikev2::correlation;
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::error::Failure;
use crate::ikev2::payloads::{auth, error_notify, id_r, notifies};
use crate::ikev2::proposal::{child_sa_payload, ChildDh};
use crate::ikev2::sa::{IkeSa, Phase, Request};
use crate::ikev2::server_addresses;
use crate::ikev2::tasks::child;
use crate::wire::ikev2::{ExchangeType, Notify, NotifyType, Payload, TrafficSelectors};

/// HDR, SK {IDi, [CERT+], [CERTREQ], IDr, AUTH, N(INITIAL_CONTACT), SA, TSi, TSr}.
pub fn start(ctx: &mut Ctx<'_>, sa: &mut IkeSa) -> Result<(), Failure> {
    let config = &ctx.config.peers[sa.peer];
    let child_spi = ctx.spis.allocate(ctx.rng, sa.local.ip(), sa.remote.ip());
    let keys = sa.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let ours = OurProof {
        id: &config.local_id,
        our_sa_init: &sa.init_request,
        peer_nonce: &sa.nr,
        our_sk_p: &keys.ike.sk_pi,
    };
    let announced = PeerAnnouncements::of(&sa.init_response, &[]);
    let mut auth = our_auth(keys.prf, config, &ours, &announced)?;
    let auth_payload = auth.pop();
    let mut payloads = vec![Payload::IdI(config.local_id.clone())];
    // RFC 7296 3.6/3.7: our certificates, then the CAs we trust for the responder's.
    payloads.extend(auth);
    if let Some(credentials) = &config.pubkey {
        payloads.push(Payload::CertReq(credentials.cert_request()));
    }
    payloads.push(Payload::IdR(config.remote_id.clone()));
    payloads.extend(auth_payload);
    match &sa.correlation {
        // [MS-IKEE] 3.10: the Correlation payload goes immediately before the SA payload; the
        // original SA stays, so no INITIAL_CONTACT.
        Some(_) => {}
        // RFC 7296 2.8.3: a reauthentication keeps the old IKE SA until this one is up; the
        // peer must not drop it on INITIAL_CONTACT.
        None if sa.rekey.reauth_of.is_some() => {}
        // RFC 7296 2.4: another IKE SA with this peer exists; the peer would delete it.
        None if !sa.initial_contact => {}
        // RFC 7296 2.4: this is the only IKE SA with this peer.
        None => payloads.push(Payload::Notify(Notify::new(
            NotifyType::InitialContact,
            vec![],
        ))),
    }
    if config.request_server_addresses {
        payloads.push(server_addresses::request());
    }
    if let Some(source) = &sa.correlation {
        payloads.push(correlation::payload(keys.prf, source, (sa.spi_i, sa.spi_r)));
    }
    payloads.extend([
        Payload::Sa(child_sa_payload(
            &config.child.suites,
            child_spi,
            ChildDh::Ignored,
        )),
        Payload::TsI(TrafficSelectors {
            selectors: config.child.local_ts.clone(),
        }),
        Payload::TsR(TrafficSelectors {
            selectors: config.child.remote_ts.clone(),
        }),
    ]);
    let datagram = sa.seal(
        ExchangeType::IkeAuth,
        false,
        sa.next_request_id,
        &payloads,
        ctx.rng,
    )?;
    sa.phase = Phase::AuthSent { child_spi };
    ctx.send_request(sa, Request::Auth, datagram);
    Ok(())
}

pub fn handle_response(ctx: &mut Ctx<'_>, sa: &mut IkeSa, inner: &[Payload]) -> Keep {
    let Phase::AuthSent { child_spi } = sa.phase else {
        return Keep::Yes;
    };
    if let Err(failure) = authenticate(ctx, sa, inner) {
        if matches!(
            failure.notify(),
            Some((NotifyType::AuthenticationFailed, _))
        ) {
            report_authentication_failed(ctx, sa);
        }
        ctx.fail(sa, failure);
        return Keep::Remove;
    }
    ctx.request_done(sa);
    sa.phase = Phase::Established;
    ctx.stats.ike_sas_established += 1;
    let peer = ctx.peer_name(sa);
    ctx.events.push_back(Event::IkeSaEstablished {
        spi: sa.our_spi,
        peer: peer.clone(),
    });
    ctx.arm_liveness(sa);
    if let Some(original_spi) = sa.correlated_with {
        match notifies(inner, NotifyType::MsNotifyStatus).next() {
            Some(status) => {
                sa.correlated_with = None;
                let status =
                    <[u8; 4]>::try_from(status.data.as_slice()).map_or(0, u32::from_be_bytes);
                ctx.events.push_back(Event::CorrelationFailed {
                    spi: sa.our_spi,
                    status,
                });
            }
            None => ctx.events.push_back(Event::Correlated {
                spi: sa.our_spi,
                original_spi,
            }),
        }
    }
    let (addresses, malformed) = server_addresses::parse_reply(inner);
    ctx.stats.config_attributes_ignored += malformed as u64;
    if !addresses.is_empty() {
        ctx.events.push_back(Event::ServerAddresses {
            spi: sa.our_spi,
            addresses,
        });
    }
    // A child SA failure leaves the IKE SA up (RFC 7296 1.2).
    let nonces = (sa.ni.as_slice(), sa.nr.as_slice());
    match child::accept(
        ctx,
        sa,
        inner,
        peer,
        child_spi,
        nonces,
        ChildDh::Ignored,
        None,
    ) {
        Ok(child) => {
            ctx.stats.child_sas_established += 1;
            sa.children.push(child.clone());
            ctx.events
                .push_back(Event::ChildSaEstablished(Box::new(child)));
        }
        Err(failure) => ctx.fail(sa, failure),
    }
    Keep::Yes
}

/// Tells the responder that its IKE_AUTH response did not authenticate it: it holds the IKE SA
/// as established until then. An error found in a response goes back in an INFORMATIONAL
/// request of its own (RFC 7296 2.21.2); this one is sent once and not waited for, since the IKE
/// SA is deleted here at once (as strongSwan does).
fn report_authentication_failed(ctx: &mut Ctx<'_>, sa: &mut IkeSa) {
    let notify = Payload::Notify(Notify::new(NotifyType::AuthenticationFailed, vec![]));
    let message_id = sa.next_request_id.wrapping_add(1);
    if let Ok(datagrams) = sa.seal(
        ExchangeType::Informational,
        false,
        message_id,
        &[notify],
        ctx.rng,
    ) {
        ctx.stats.authentication_failed_sent += 1;
        ctx.send_all(sa.local, sa.remote, datagrams);
    }
}

/// The responder proves it holds the key or the certificate: IDr must be the configured one,
/// AUTH must verify.
fn authenticate(ctx: &Ctx<'_>, sa: &IkeSa, inner: &[Payload]) -> Result<(), Failure> {
    let config = &ctx.config.peers[sa.peer];
    let (Some(id), Some(received)) = (id_r(inner), auth(inner)) else {
        return Err(error_notify(inner).map_or(Failure::Missing("IDr/AUTH"), Failure::PeerError));
    };
    let keys = sa.keys.as_ref().ok_or(Failure::Missing("keys"))?;
    let proof = PeerProof {
        id,
        auth: received,
        certs: PeerProof::certs_of(inner),
        peer_sa_init: &sa.init_response,
        our_nonce: &sa.ni,
        peer_sk_p: &keys.ike.sk_pr,
    };
    peer_proves(
        keys.prf,
        config,
        &proof,
        ctx.config.wall_clock.unix_at(ctx.now),
    )
}
