//! INFORMATIONAL requests from the peer (RFC 7296 1.4): deletes and liveness checks, the
//! initiator's report that our IKE_AUTH response did not authenticate us, and the refusal of
//! exchanges we do not implement.
use crate::ikev2::engine::{Ctx, Event, Keep};
use crate::ikev2::payloads::notifies;
use crate::ikev2::rekey;
use crate::ikev2::sa::IkeSa;
use crate::wire::ikev2::{Delete, ExchangeType, Notify, NotifyType, Payload, ProtocolId};
use std::collections::HashMap;

pub fn handle_request(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    message_id: u32,
    inner: &[Payload],
    sas: &mut HashMap<u64, IkeSa>,
) -> Keep {
    // RFC 7296 2.21.4: the peer got ESP on an SPI it does not know; nothing to undo here.
    ctx.stats.invalid_spi_received += notifies(inner, NotifyType::InvalidSpi).count() as u64;
    // RFC 7296 2.21.2: the initiator could not authenticate us and has deleted the IKE SA.
    let authentication_failed = notifies(inner, NotifyType::AuthenticationFailed)
        .next()
        .is_some();
    ctx.stats.authentication_failed_received += u64::from(authentication_failed);
    let mut delete_ike = authentication_failed;
    let mut deleted_inbound = Vec::new();
    for payload in inner {
        match payload {
            Payload::Delete(Delete::Ike) => delete_ike = true,
            Payload::Delete(Delete::Child {
                protocol: ProtocolId::Esp,
                spis,
            }) => {
                // The peer names its inbound SPIs, which are our outbound ones (RFC 7296 1.4.1).
                for spi in spis {
                    if let Some(index) = sa.children.iter().position(|c| c.outbound_spi == *spi) {
                        let child = sa.children.remove(index);
                        deleted_inbound.push(child.inbound_spi);
                        ctx.events.push_back(Event::ChildSaDeleted {
                            ike_spi: sa.our_spi,
                            inbound_spi: child.inbound_spi,
                            outbound_spi: child.outbound_spi,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if inner.is_empty() {
        ctx.stats.liveness_answered += 1;
    }
    let mut response = Vec::new();
    if !deleted_inbound.is_empty() && !delete_ike {
        response.push(Payload::Delete(Delete::Child {
            protocol: ProtocolId::Esp,
            spis: deleted_inbound,
        }));
    }
    if let Ok(datagram) = sa.seal(
        ExchangeType::Informational,
        true,
        message_id,
        &response,
        ctx.rng,
    ) {
        ctx.send_response(sa, message_id, datagram);
    }
    if delete_ike {
        // The children of a replaced IKE SA live on in its successor (RFC 7296 2.18).
        rekey::settle_before_delete(ctx, sa, sas);
        ctx.deleted(sa);
        return Keep::Remove;
    }
    ctx.arm_liveness(sa);
    Keep::Yes
}

/// Answers a request we do not support with one error notification; the IKE SA stays.
pub fn refuse(
    ctx: &mut Ctx<'_>,
    sa: &mut IkeSa,
    exchange: ExchangeType,
    message_id: u32,
    kind: NotifyType,
) -> Keep {
    let payloads = [Payload::Notify(Notify::new(kind, vec![]))];
    if let Ok(datagram) = sa.seal(exchange, true, message_id, &payloads, ctx.rng) {
        ctx.send_response(sa, message_id, datagram);
    }
    Keep::Yes
}
