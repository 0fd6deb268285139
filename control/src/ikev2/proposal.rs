//! SA payloads from configuration, and proposal selection (RFC 7296 2.7, 3.3.6).
use super::config::IkeProposal;
use super::error::Failure;
use crate::crypto::{Integ, KeyLengths, Prf, SkEncryption};
use crate::wire::ikev2::{
    DhGroup, EncrId, EsnId, IntegId, Proposal, ProtocolId, SaPayload, Transform, TransformType,
};
use shared::sa::{AesKeySize, Integrity, Suite};

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeAlgorithms {
    pub encryption: SkEncryption,
    pub integrity: Option<Integ>,
    pub prf: Prf,
    pub group: DhGroup,
}

impl IkeAlgorithms {
    pub fn key_lengths(&self) -> KeyLengths {
        KeyLengths {
            encr: self.encryption.keymat_len(),
            integ: self.integrity.map_or(0, Integ::key_len),
        }
    }
}

fn encr_transform(encryption: SkEncryption) -> Transform {
    let (id, len) = match encryption {
        SkEncryption::AesCbc(len) => (EncrId::AesCbc, len),
        SkEncryption::AesGcm16(len) => (EncrId::AesGcm16, len),
    };
    Transform::with_key_length(TransformType::Encr, id.into(), (len * 8) as u16)
}

/// The IKE SA payload offering `proposals`; `spi` is empty for IKE_SA_INIT, 8 bytes on rekey.
pub fn ike_sa_payload(proposals: &[IkeProposal], spi: &[u8]) -> SaPayload {
    let proposals = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut transforms = vec![
                encr_transform(p.encryption),
                Transform::new(TransformType::Prf, p.prf.id().into()),
            ];
            if let Some(integ) = p.integrity {
                transforms.push(Transform::new(TransformType::Integ, integ.id().into()));
            }
            transforms.extend(
                p.groups
                    .iter()
                    .map(|g| Transform::new(TransformType::Dh, (*g).into())),
            );
            Proposal {
                number: i as u8 + 1,
                protocol: ProtocolId::Ike,
                spi: spi.to_vec(),
                transforms,
            }
        })
        .collect();
    SaPayload { proposals }
}

/// The algorithms of one received proposal if every one of its transform types has exactly one
/// choice we accept; `None` when it includes something we do not support.
fn ike_choice(received: &Proposal, ours: &IkeProposal) -> Option<IkeAlgorithms> {
    if received.protocol != ProtocolId::Ike {
        return None;
    }
    let encryption = received.transforms.iter().find_map(|t| {
        (t.kind == TransformType::Encr)
            .then(|| SkEncryption::from_transform(EncrId::from(t.id), t.key_length()))
            .flatten()
            .filter(|e| *e == ours.encryption)
    })?;
    let prf = received.transforms.iter().find_map(|t| {
        (t.kind == TransformType::Prf)
            .then(|| Prf::from_id(t.id.into()))
            .flatten()
            .filter(|p| *p == ours.prf)
    })?;
    let integrity = match ours.integrity {
        None => {
            // An AEAD proposal carries no integrity transform other than NONE.
            let bad = received
                .transforms
                .iter()
                .any(|t| t.kind == TransformType::Integ && t.id != u16::from(IntegId::None));
            if bad {
                return None;
            }
            None
        }
        Some(integ) => Some(received.transforms.iter().find_map(|t| {
            (t.kind == TransformType::Integ)
                .then(|| Integ::from_id(t.id.into()))
                .flatten()
                .filter(|i| *i == integ)
        })?),
    };
    let group = ours.groups.iter().copied().find(|g| {
        received
            .transforms
            .iter()
            .any(|t| t.kind == TransformType::Dh && t.id == u16::from(*g))
    })?;
    Some(IkeAlgorithms {
        encryption,
        integrity,
        prf,
        group,
    })
}

/// Responder: the first received proposal that one of ours accepts (the initiator's order wins).
/// Returns the proposal number with the algorithms.
pub fn select_ike(
    received: &SaPayload,
    ours: &[IkeProposal],
) -> Result<(u8, IkeAlgorithms), Failure> {
    received
        .proposals
        .iter()
        .find_map(|p| {
            ours.iter()
                .find_map(|o| ike_choice(p, o))
                .map(|a| (p.number, a))
        })
        .ok_or(Failure::NoProposalChosen)
}

/// The SA payload a responder returns: the chosen proposal with one transform of each type.
pub fn ike_answer(number: u8, algorithms: &IkeAlgorithms, spi: &[u8]) -> SaPayload {
    let mut transforms = vec![
        encr_transform(algorithms.encryption),
        Transform::new(TransformType::Prf, algorithms.prf.id().into()),
    ];
    if let Some(integ) = algorithms.integrity {
        transforms.push(Transform::new(TransformType::Integ, integ.id().into()));
    }
    transforms.push(Transform::new(TransformType::Dh, algorithms.group.into()));
    SaPayload {
        proposals: vec![Proposal {
            number,
            protocol: ProtocolId::Ike,
            spi: spi.to_vec(),
            transforms,
        }],
    }
}

/// Initiator: the responder's answer must be a single proposal that we offered.
pub fn accept_ike_answer(
    answer: &SaPayload,
    ours: &[IkeProposal],
) -> Result<IkeAlgorithms, Failure> {
    match answer.proposals.as_slice() {
        [only] => ours
            .iter()
            .find_map(|o| ike_choice(only, o))
            .ok_or(Failure::NoProposalChosen),
        _ => Err(Failure::NoProposalChosen),
    }
}

/// The ESP transforms of a suite (RFC 4106, RFC 4543, RFC 3602 with RFC 2404/4868).
fn suite_transforms(suite: Suite) -> Vec<Transform> {
    let bits = |k: AesKeySize| (k.bytes() * 8) as u16;
    match suite {
        Suite::AesGcm { key, icv_len } => {
            let id = match icv_len {
                8 => EncrId::AesGcm8,
                12 => EncrId::AesGcm12,
                _ => EncrId::AesGcm16,
            };
            vec![Transform::with_key_length(
                TransformType::Encr,
                id.into(),
                bits(key),
            )]
        }
        Suite::AesGmac { key } => {
            vec![Transform::with_key_length(
                TransformType::Encr,
                EncrId::NullAuthAesGmac.into(),
                bits(key),
            )]
        }
        Suite::AesCbc { key, integrity } => {
            let integ = match integrity {
                Integrity::HmacSha1_96 => IntegId::HmacSha1_96,
                Integrity::HmacSha256_128 => IntegId::HmacSha256_128,
            };
            vec![
                Transform::with_key_length(TransformType::Encr, EncrId::AesCbc.into(), bits(key)),
                Transform::new(TransformType::Integ, integ.into()),
            ]
        }
    }
}

/// The Diffie-Hellman transforms a child SA proposal carries (RFC 7296 1.3.1, 1.3.2, 3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildDh<'a> {
    /// IKE_AUTH: the first child SA takes its keys from the IKE SA, so a D-H transform in a
    /// proposal is ignored (RFC 7296 1.2) and none is sent.
    Ignored,
    /// CREATE_CHILD_SA: these groups for PFS, in order of preference; none means no PFS.
    Groups(&'a [DhGroup]),
}

/// The child SA payload: one ESP proposal per suite, all with our inbound SPI, no ESN and, with
/// PFS, the D-H groups.
pub fn child_sa_payload(suites: &[Suite], spi: u32, dh: ChildDh<'_>) -> SaPayload {
    let groups = match dh {
        ChildDh::Ignored => &[][..],
        ChildDh::Groups(groups) => groups,
    };
    let proposals = suites
        .iter()
        .enumerate()
        .map(|(i, suite)| {
            let mut transforms = suite_transforms(*suite);
            transforms.extend(
                groups
                    .iter()
                    .map(|g| Transform::new(TransformType::Dh, (*g).into())),
            );
            transforms.push(Transform::new(TransformType::Esn, EsnId::NoEsn.into()));
            Proposal {
                number: i as u8 + 1,
                protocol: ProtocolId::Esp,
                spi: spi.to_be_bytes().to_vec(),
                transforms,
            }
        })
        .collect();
    SaPayload { proposals }
}

/// Whether a received ESP proposal offers `suite` without ESN.
fn offers(received: &Proposal, suite: Suite) -> bool {
    let has = |t: &Transform| received.transforms.iter().any(|r| r == t);
    let no_esn = Transform::new(TransformType::Esn, EsnId::NoEsn.into());
    received.protocol == ProtocolId::Esp && suite_transforms(suite).iter().all(has) && has(&no_esn)
}

/// The D-H group a received proposal agrees on with `dh`: `Some(None)` for no PFS (the proposal
/// has no D-H transform, or NONE among them), `Some(Some(group))` for the first of `preferred`
/// then of our groups that it offers, `None` if it does not fit.
fn agreed_group(
    received: &Proposal,
    dh: ChildDh<'_>,
    preferred: Option<DhGroup>,
) -> Option<Option<DhGroup>> {
    let offered: Vec<u16> = received
        .transforms
        .iter()
        .filter(|t| t.kind == TransformType::Dh)
        .map(|t| t.id)
        .collect();
    match dh {
        ChildDh::Ignored => Some(None),
        ChildDh::Groups([]) => {
            (offered.is_empty() || offered.contains(&DhGroup::None.into())).then_some(None)
        }
        ChildDh::Groups(ours) => preferred
            .into_iter()
            .chain(ours.iter().copied())
            .find(|g| ours.contains(g) && offered.contains(&u16::from(*g)))
            .map(Some),
    }
}

fn peer_spi(proposal: &Proposal) -> Result<u32, Failure> {
    let bytes: [u8; 4] = proposal
        .spi
        .as_slice()
        .try_into()
        .map_err(|_| Failure::NoProposalChosen)?;
    Ok(u32::from_be_bytes(bytes))
}

/// The responder's choice of child SA proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildChoice {
    pub number: u8,
    pub suite: Suite,
    pub peer_spi: u32,
    /// The PFS group, if any.
    pub group: Option<DhGroup>,
}

/// Responder: the first received ESP proposal that offers one of our suites and agrees on PFS;
/// among our groups, the one of the peer's KE payload (`ke_group`) is preferred, which saves an
/// INVALID_KE_PAYLOAD round trip.
pub fn select_child(
    received: &SaPayload,
    ours: &[Suite],
    dh: ChildDh<'_>,
    ke_group: Option<DhGroup>,
) -> Result<ChildChoice, Failure> {
    for proposal in &received.proposals {
        let Some(suite) = ours.iter().copied().find(|s| offers(proposal, *s)) else {
            continue;
        };
        if let Some(group) = agreed_group(proposal, dh, ke_group) {
            return Ok(ChildChoice {
                number: proposal.number,
                suite,
                peer_spi: peer_spi(proposal)?,
                group,
            });
        }
    }
    Err(Failure::NoProposalChosen)
}

/// Initiator: the responder's single ESP proposal must be one of our suites with one of our PFS
/// groups (or none, without PFS); returns the suite, the peer's SPI and the group.
pub fn accept_child_answer(
    answer: &SaPayload,
    ours: &[Suite],
    dh: ChildDh<'_>,
) -> Result<(Suite, u32, Option<DhGroup>), Failure> {
    let [only] = answer.proposals.as_slice() else {
        return Err(Failure::NoProposalChosen);
    };
    let suite = ours
        .iter()
        .copied()
        .find(|s| offers(only, *s))
        .ok_or(Failure::NoProposalChosen)?;
    let dh_transforms = only
        .transforms
        .iter()
        .filter(|t| t.kind == TransformType::Dh)
        .count();
    if dh_transforms > 1 {
        return Err(Failure::NoProposalChosen);
    }
    let group = agreed_group(only, dh, None).ok_or(Failure::NoProposalChosen)?;
    Ok((suite, peer_spi(only)?, group))
}
