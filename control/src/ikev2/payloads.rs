//! Finding payloads in a parsed message.
use crate::wire::ikev2::{DhGroup, Notify, NotifyType, Payload};

/// The notifications of one type.
pub fn notifies(payloads: &[Payload], kind: NotifyType) -> impl Iterator<Item = &Notify> {
    payloads.iter().filter_map(move |p| match p {
        Payload::Notify(n) if n.kind == kind => Some(n),
        _ => None,
    })
}

/// The first error notification, if any (RFC 7296 3.10.1). The [MS-IKEE] 2.2.7 private status
/// 0x3039 reports a correlation failure that must not fail the exchange, so it is not one.
pub fn error_notify(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind.is_error() && n.kind != NotifyType::MsNotifyStatus => {
            Some(n.kind)
        }
        _ => None,
    })
}

/// The group an INVALID_KE_PAYLOAD notification asks for (RFC 7296 3.10.1: two octets); `None`
/// without one or when its data is malformed.
pub fn requested_group(payloads: &[Payload]) -> Option<DhGroup> {
    let notify = notifies(payloads, NotifyType::InvalidKePayload).next()?;
    let wanted: [u8; 2] = notify.data.as_slice().try_into().ok()?;
    Some(DhGroup::from(u16::from_be_bytes(wanted)))
}

/// The first payload `pick` accepts.
pub fn find<'a, T>(
    payloads: &'a [Payload],
    pick: impl Fn(&'a Payload) -> Option<&'a T>,
) -> Option<&'a T> {
    payloads.iter().find_map(pick)
}

/// Generates a `fn(payloads) -> Option<&T>` for one payload variant.
macro_rules! getter {
    ($name:ident, $variant:ident, $ty:ty) => {
        pub fn $name(payloads: &[Payload]) -> Option<&$ty> {
            find(payloads, |p| match p {
                Payload::$variant(v) => Some(v),
                _ => None,
            })
        }
    };
}

getter!(sa_payload, Sa, crate::wire::ikev2::SaPayload);
getter!(ke, Ke, crate::wire::ikev2::KeyExchange);
getter!(nonce, Nonce, Vec<u8>);
getter!(id_i, IdI, crate::wire::ikev2::Identification);
getter!(id_r, IdR, crate::wire::ikev2::Identification);
getter!(auth, Auth, crate::wire::ikev2::Auth);
getter!(ts_i, TsI, crate::wire::ikev2::TrafficSelectors);
getter!(ts_r, TsR, crate::wire::ikev2::TrafficSelectors);
