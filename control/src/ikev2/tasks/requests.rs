//! The requests this end starts, one at a time (RFC 7296 2.3: a window of one): the rest wait in
//! the SA's queue.
use crate::ikev2::engine::Ctx;
use crate::ikev2::sa::{IkeSa, Request};
use crate::ikev2::tasks::{create_child_initiator, rekey_ike_initiator};
use crate::wire::ikev2::{Delete, ExchangeType, Notify, NotifyType, Payload, ProtocolId};

/// The next request to send. An IKE SA that was replaced sends only its own delete; the rest
/// waits to move to its successor (RFC 7296 2.18).
fn next(sa: &mut IkeSa) -> Option<Request> {
    if sa.rekey.successor.is_some() {
        let at = sa.queued.iter().position(|r| *r == Request::DeleteIke)?;
        return sa.queued.remove(at);
    }
    sa.queued.pop_front()
}

/// Sends the next queued request if none is outstanding.
pub fn send_queued(ctx: &mut Ctx<'_>, sa: &mut IkeSa) {
    while sa.outstanding.is_none() {
        let Some(request) = next(sa) else {
            return;
        };
        let has_child = |spi: u32| sa.children.iter().any(|c| c.inbound_spi == spi);
        let (exchange, payloads) = match request {
            Request::DeleteIke => (
                ExchangeType::Informational,
                vec![Payload::Delete(Delete::Ike)],
            ),
            Request::DeleteChild { inbound_spi } if has_child(inbound_spi) => (
                ExchangeType::Informational,
                vec![Payload::Delete(Delete::Child {
                    protocol: ProtocolId::Esp,
                    spis: vec![inbound_spi],
                })],
            ),
            Request::Liveness => (ExchangeType::Informational, vec![]),
            // RFC 7296 2.21.4: the SPI of the packet in the notification data.
            Request::InvalidSpi { spi } => (
                ExchangeType::Informational,
                vec![Payload::Notify(Notify {
                    protocol: ProtocolId::Esp,
                    kind: NotifyType::InvalidSpi,
                    spi: Vec::new(),
                    data: spi.to_be_bytes().to_vec(),
                })],
            ),
            Request::RekeyChild {
                old_inbound_spi,
                ke_group,
            } => match create_child_initiator::request(ctx, sa, Some(old_inbound_spi), ke_group) {
                Some(payloads) => (ExchangeType::CreateChildSa, payloads),
                None => continue,
            },
            Request::NewChild { ke_group } => {
                match create_child_initiator::request(ctx, sa, None, ke_group) {
                    Some(payloads) => (ExchangeType::CreateChildSa, payloads),
                    None => continue,
                }
            }
            Request::RekeyIke => match rekey_ike_initiator::request(ctx, sa) {
                Some(payloads) => (ExchangeType::CreateChildSa, payloads),
                None => continue,
            },
            Request::DeleteChild { .. } | Request::SaInit | Request::Auth => continue,
        };
        match sa.seal(exchange, false, sa.next_request_id, &payloads, ctx.rng) {
            Ok(datagram) => ctx.send_request(sa, request, datagram),
            Err(_) => return,
        }
    }
}
