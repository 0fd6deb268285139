//! Vendor ID payloads of Windows peers ([MS-IKEE] 1.7): each is the MD5 hash of a string
//! (RFC 2408 3.16); "MS NT5 ISAKMPOAKLEY" is followed by a 4-byte version.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownVendor {
    /// "MS NT5 ISAKMPOAKLEY"
    MsNt5Isakmpoakley,
    /// "MS-Negotiation Discovery Capable"
    MsNegotiationDiscoveryCapable,
    /// "IKE CGA version 1"
    IkeCgaVersion1,
    /// "Vid-Initial-Contact"
    VidInitialContact,
    /// "NLBS_PRESENT"
    NlbsPresent,
    /// "MS-MamieExists"
    MsMamieExists,
    /// "FRAGMENTATION"
    Fragmentation,
    /// "RFC 3947"
    Rfc3947,
}

/// (vendor, string, MD5 of the string), computed with an independent MD5 (Python's hashlib).
const KNOWN: [(KnownVendor, &str, &str); 8] = [
    (
        KnownVendor::MsNt5Isakmpoakley,
        "MS NT5 ISAKMPOAKLEY",
        "1e2b516905991c7d7c96fcbfb587e461",
    ),
    (
        KnownVendor::MsNegotiationDiscoveryCapable,
        "MS-Negotiation Discovery Capable",
        "fb1de3cdf341b7ea16b7e5be0855f120",
    ),
    (
        KnownVendor::IkeCgaVersion1,
        "IKE CGA version 1",
        "e3a5966a76379fe707228231e5ce8652",
    ),
    (
        KnownVendor::VidInitialContact,
        "Vid-Initial-Contact",
        "26244d38eddb61b3172a36e3d0cfb819",
    ),
    (
        KnownVendor::NlbsPresent,
        "NLBS_PRESENT",
        "72872b95fcda2eb708efe322119b4971",
    ),
    (
        KnownVendor::MsMamieExists,
        "MS-MamieExists",
        "214ca4faffa7f32d6748e5303395ae83",
    ),
    (
        KnownVendor::Fragmentation,
        "FRAGMENTATION",
        "4048b7d56ebce88525e7de7f00d6c2d3",
    ),
    (
        KnownVendor::Rfc3947,
        "RFC 3947",
        "4a131c81070358455c5728f20e95452f",
    ),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A recognised vendor ID, with the Windows version number for "MS NT5 ISAKMPOAKLEY".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vendor {
    pub vendor: KnownVendor,
    pub version: Option<u32>,
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = KNOWN
            .iter()
            .find(|(v, _, _)| *v == self.vendor)
            .map_or("?", |(_, s, _)| s);
        match self.version {
            Some(version) => write!(f, "{name} version {version}"),
            None => f.write_str(name),
        }
    }
}

pub fn recognise(data: &[u8]) -> Option<Vendor> {
    let (head, tail) = data.split_at(data.len().min(16));
    let head = hex(head);
    let (vendor, _, _) = KNOWN.iter().find(|(_, _, md5)| *md5 == head)?;
    let version = match (vendor, tail) {
        (KnownVendor::MsNt5Isakmpoakley, [a, b, c, d]) => {
            Some(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        (_, []) => None,
        _ => return None,
    };
    Some(Vendor {
        vendor: *vendor,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex as unhex;

    #[test]
    fn windows_vendor_ids_are_recognised() {
        let nt5 = unhex("1e2b516905991c7d7c96fcbfb587e46100000009");
        assert_eq!(
            recognise(&nt5),
            Some(Vendor {
                vendor: KnownVendor::MsNt5Isakmpoakley,
                version: Some(9)
            })
        );
        assert_eq!(
            recognise(&nt5).unwrap().to_string(),
            "MS NT5 ISAKMPOAKLEY version 9"
        );
        let frag = unhex("4048b7d56ebce88525e7de7f00d6c2d3");
        assert_eq!(
            recognise(&frag).map(|v| v.vendor),
            Some(KnownVendor::Fragmentation)
        );
        assert_eq!(recognise(b"strongSwan"), None);
        assert_eq!(recognise(&frag[..15]), None);
    }
}
