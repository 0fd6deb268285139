//! Security associations: the typed configuration the control plane installs, its validation, and
//! the fixed-size record it becomes in the region.

use std::net::IpAddr;

use bytemuck::{Pod, Zeroable};
use zeroize::Zeroizing;

use crate::addr::RawAddr;

/// SPIs 1-255 are reserved by IANA and 0 means "no SA" (RFC 4303 section 2.1).
pub const MIN_SPI: u32 = 256;
/// Largest anti-replay window an SA may ask for, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Tunnel,
    Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AesKeySize {
    Aes128,
    Aes256,
}

impl AesKeySize {
    pub fn bytes(self) -> usize {
        match self {
            AesKeySize::Aes128 => 16,
            AesKeySize::Aes256 => 32,
        }
    }
}

/// Integrity algorithms used with AES-CBC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// HMAC-SHA1-96, RFC 2404: 20-byte key, 12-byte ICV.
    HmacSha1_96,
    /// HMAC-SHA-256-128, RFC 4868: 32-byte key, 16-byte ICV.
    HmacSha256_128,
}

impl Integrity {
    pub fn key_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 20,
            Integrity::HmacSha256_128 => 32,
        }
    }
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::HmacSha1_96 => 12,
            Integrity::HmacSha256_128 => 16,
        }
    }
}

/// The ESP transform of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-GCM, RFC 4106: key || 4-byte salt, 8-byte explicit IV, ICV of 8, 12 or 16 bytes.
    AesGcm { key: AesKeySize, icv_len: u8 },
    /// AES-CBC, RFC 3602, with an HMAC integrity algorithm.
    AesCbc { key: AesKeySize, integrity: Integrity },
    /// ENCR_NULL_AUTH_AES_GMAC, RFC 4543: integrity only, key || 4-byte salt, 16-byte ICV.
    AesGmac { key: AesKeySize },
}

/// Length of the salt appended to AES-GCM and AES-GMAC keys (RFC 4106 section 8.1).
pub const SALT_LEN: usize = 4;

impl Suite {
    /// Length of the encryption key material, salt included.
    pub fn enc_key_len(self) -> usize {
        match self {
            Suite::AesGcm { key, .. } | Suite::AesGmac { key } => key.bytes() + SALT_LEN,
            Suite::AesCbc { key, .. } => key.bytes(),
        }
    }
    /// Length of the separate integrity key (0 for the combined-mode suites).
    pub fn auth_key_len(self) -> usize {
        match self {
            Suite::AesCbc { integrity, .. } => integrity.key_len(),
            _ => 0,
        }
    }
    pub fn icv_len(self) -> usize {
        match self {
            Suite::AesGcm { icv_len, .. } => icv_len as usize,
            Suite::AesCbc { integrity, .. } => integrity.icv_len(),
            Suite::AesGmac { .. } => 16,
        }
    }

    fn codes(self) -> (u8, u8, u8) {
        let key = |k: AesKeySize| k.bytes() as u8;
        match self {
            Suite::AesGcm { key: k, icv_len } => (CIPHER_AES_GCM | key(k), 0, icv_len),
            Suite::AesCbc { key: k, integrity } => {
                let i = match integrity {
                    Integrity::HmacSha1_96 => INTEG_HMAC_SHA1_96,
                    Integrity::HmacSha256_128 => INTEG_HMAC_SHA256_128,
                };
                (CIPHER_AES_CBC | key(k), i, self.icv_len() as u8)
            }
            Suite::AesGmac { key: k } => (CIPHER_AES_GMAC | key(k), 0, 16),
        }
    }

    fn from_codes(cipher: u8, integrity: u8, icv_len: u8) -> Option<Suite> {
        let key = match cipher & 0x3f {
            16 => AesKeySize::Aes128,
            32 => AesKeySize::Aes256,
            _ => return None,
        };
        let suite = match cipher & 0xc0 {
            CIPHER_AES_GCM => Suite::AesGcm { key, icv_len },
            CIPHER_AES_CBC => Suite::AesCbc {
                key,
                integrity: match integrity {
                    INTEG_HMAC_SHA1_96 => Integrity::HmacSha1_96,
                    INTEG_HMAC_SHA256_128 => Integrity::HmacSha256_128,
                    _ => return None,
                },
            },
            CIPHER_AES_GMAC => Suite::AesGmac { key },
            _ => return None,
        };
        Some(suite)
    }
}

// Record encoding of the suite: the top two bits name the cipher, the low six its key bytes.
const CIPHER_AES_GCM: u8 = 0x40;
const CIPHER_AES_CBC: u8 = 0x80;
const CIPHER_AES_GMAC: u8 = 0xc0;
const INTEG_HMAC_SHA1_96: u8 = 1;
const INTEG_HMAC_SHA256_128: u8 = 2;

/// What to do with the DF bit of the outer IPv4 header in tunnel mode (RFC 4301 section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DfPolicy {
    /// Copy DF from the inner IPv4 header (cleared for an inner IPv6 packet).
    #[default]
    Copy,
    Set,
    Clear,
}

/// UDP encapsulation of ESP (RFC 3948): our port and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    pub src_port: u16,
    pub dst_port: u16,
}

/// An IKEv2-style traffic selector (RFC 7296 section 3.13.1): an address range, a protocol
/// (0 = any) and a port range. For ICMP the ports carry type and code, as in RFC 4301 4.4.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub start: IpAddr,
    pub end: IpAddr,
    pub proto: u8,
    pub start_port: u16,
    pub end_port: u16,
}

impl TrafficSelector {
    /// Every address of `addr`'s family, any protocol, any port.
    pub fn any_of_family(addr: IpAddr) -> TrafficSelector {
        let (start, end) = match addr {
            IpAddr::V4(_) => (IpAddr::from([0u8; 4]), IpAddr::from([255u8; 4])),
            IpAddr::V6(_) => (IpAddr::from([0u8; 16]), IpAddr::from([255u8; 16])),
        };
        TrafficSelector { start, end, proto: 0, start_port: 0, end_port: u16::MAX }
    }
}

/// Lifetime limits; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Pod, Zeroable)]
#[repr(C)]
pub struct Limits {
    pub bytes: u64,
    pub packets: u64,
    pub seconds: u64,
}

/// The flags [MS-IKEE] 3.7.1 keeps per SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsSaFlags {
    /// The SA matches an inbound negotiation discovery rule on the remote host.
    pub boundary: bool,
    /// The SA encrypts and may carry flows that have Guaranteed Encryption set.
    pub guaranteed_encryption: bool,
}

/// Everything the control plane says about one SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaConfig {
    pub spi: u32,
    pub direction: Direction,
    pub mode: Mode,
    /// Outer source address (tunnel) or our/peer address (transport).
    pub src: IpAddr,
    /// Outer destination address; with the SPI, the inbound lookup key.
    pub dst: IpAddr,
    pub encap: Option<UdpEncap>,
    pub suite: Suite,
    /// Cipher key (with the salt appended for AES-GCM/GMAC).
    pub enc_key: Zeroizing<Vec<u8>>,
    /// Integrity key (empty for the combined-mode suites).
    pub auth_key: Zeroizing<Vec<u8>>,
    /// 64-bit extended sequence numbers (RFC 4303 section 2.2.1).
    pub esn: bool,
    /// Anti-replay window in packets (inbound; 0 disables the check).
    pub replay_window: u32,
    pub df: DfPolicy,
    pub ts_local: TrafficSelector,
    pub ts_remote: TrafficSelector,
    pub soft: Limits,
    pub hard: Limits,
    /// Delete the SA after this many seconds without traffic (0 = never).
    pub idle_timeout_secs: u64,
    pub ms_flags: MsSaFlags,
    /// Links an outbound SA to the policies that use it (0 = none).
    pub reqid: u32,
    /// The policy this SA was negotiated for (0 = none).
    pub policy_id: u32,
}

/// Why an [`SaConfig`] cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaConfigError {
    #[error("SPI {0:#010x} is reserved (SPIs 0-255 are not usable, RFC 4303 2.1)")]
    ReservedSpi(u32),
    #[error("{suite:?} needs a {expected}-byte {what} key, got {got} bytes")]
    InvalidKeyLength { suite: Suite, what: &'static str, expected: usize, got: usize },
    #[error("AES-GCM ICV must be 8, 12 or 16 bytes, got {0}")]
    InvalidIcvLength(u8),
    #[error("replay window {0} is out of range (0 or 32..={MAX_REPLAY_WINDOW})")]
    InvalidReplayWindow(u32),
    #[error("outer source {src} and destination {dst} are of different address families")]
    MixedOuterFamilies { src: IpAddr, dst: IpAddr },
    #[error("traffic selector {0:?} is not a valid range")]
    InvalidSelector(TrafficSelector),
    #[error("UDP encapsulation ports must be non-zero")]
    InvalidEncapPort,
    #[error("soft {what} lifetime {soft} exceeds the hard lifetime {hard}")]
    SoftAboveHard { what: &'static str, soft: u64, hard: u64 },
}

impl SaConfig {
    pub fn validate(&self) -> Result<(), SaConfigError> {
        if self.spi < MIN_SPI {
            return Err(SaConfigError::ReservedSpi(self.spi));
        }
        if let Suite::AesGcm { icv_len, .. } = self.suite {
            if !matches!(icv_len, 8 | 12 | 16) {
                return Err(SaConfigError::InvalidIcvLength(icv_len));
            }
        }
        for (what, expected, got) in [
            ("encryption", self.suite.enc_key_len(), self.enc_key.len()),
            ("integrity", self.suite.auth_key_len(), self.auth_key.len()),
        ] {
            if expected != got {
                return Err(SaConfigError::InvalidKeyLength { suite: self.suite, what, expected, got });
            }
        }
        if self.replay_window != 0 && !(32..=MAX_REPLAY_WINDOW).contains(&self.replay_window) {
            return Err(SaConfigError::InvalidReplayWindow(self.replay_window));
        }
        if self.src.is_ipv4() != self.dst.is_ipv4() {
            return Err(SaConfigError::MixedOuterFamilies { src: self.src, dst: self.dst });
        }
        for ts in [self.ts_local, self.ts_remote] {
            let ordered = match (ts.start, ts.end) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
                (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
                _ => false,
            };
            if !ordered || ts.start_port > ts.end_port {
                return Err(SaConfigError::InvalidSelector(ts));
            }
        }
        if let Some(e) = self.encap {
            if e.src_port == 0 || e.dst_port == 0 {
                return Err(SaConfigError::InvalidEncapPort);
            }
        }
        for (what, soft, hard) in [
            ("byte", self.soft.bytes, self.hard.bytes),
            ("packet", self.soft.packets, self.hard.packets),
            ("time", self.soft.seconds, self.hard.seconds),
        ] {
            if soft != 0 && hard != 0 && soft > hard {
                return Err(SaConfigError::SoftAboveHard { what, soft, hard });
            }
        }
        Ok(())
    }
}

/// Life-cycle state of a slot in the SAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotState {
    Free = 0,
    /// An SPI reserved by `get_spi`, not yet carrying traffic (like a kernel's larval SA).
    Larval = 1,
    Live = 2,
}

/// A traffic selector as stored in the region.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct TsRecord {
    pub start: RawAddr,
    pub end: RawAddr,
    pub start_port: u16,
    pub end_port: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

// Record flag bits.
pub const FLAG_ESN: u8 = 1 << 0;
pub const FLAG_UDP_ENCAP: u8 = 1 << 1;
pub const FLAG_BOUNDARY: u8 = 1 << 2;
pub const FLAG_GUARANTEED_ENCRYPTION: u8 = 1 << 3;

/// The fixed-size form of an SA in the region. Its first three words (SPI and state, then the
/// destination) are what a lookup reads; keep them first.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct SaRecord {
    pub spi: u32,
    pub state: u8,
    pub direction: u8,
    pub mode: u8,
    pub flags: u8,
    pub dst: RawAddr,
    pub src: RawAddr,
    pub reqid: u32,
    pub policy_id: u32,
    pub cipher: u8,
    pub integrity: u8,
    pub icv_len: u8,
    pub enc_key_len: u8,
    pub auth_key_len: u8,
    pub df_policy: u8,
    pub _pad0: [u8; 2],
    pub replay_window: u32,
    pub encap_src_port: u16,
    pub encap_dst_port: u16,
    pub enc_key: [u8; 36],
    pub auth_key: [u8; 32],
    pub _pad1: [u8; 4],
    pub ts_local: TsRecord,
    pub ts_remote: TsRecord,
    pub soft: Limits,
    pub hard: Limits,
    pub idle_timeout_secs: u64,
    pub installed_at_ns: u64,
}

/// Size of an [`SaRecord`] in 64-bit words.
pub const SA_WORDS: usize = std::mem::size_of::<SaRecord>() / 8;
const _: () = assert!(std::mem::size_of::<SaRecord>().is_multiple_of(8));

/// A record in the region that does not decode to a valid SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SA record in slot is corrupt: {0}")]
pub struct CorruptRecord(pub &'static str);

impl SaRecord {
    pub fn to_words(&self) -> [u64; SA_WORDS] {
        bytemuck::cast(*self)
    }
    pub fn from_words(words: [u64; SA_WORDS]) -> SaRecord {
        bytemuck::cast(words)
    }

    pub fn state(&self) -> SlotState {
        match self.state {
            1 => SlotState::Larval,
            2 => SlotState::Live,
            _ => SlotState::Free,
        }
    }

    pub fn direction(&self) -> Direction {
        if self.direction == 1 {
            Direction::Out
        } else {
            Direction::In
        }
    }

    /// The record of a live SA (the config must have been validated).
    pub fn live(c: &SaConfig, installed_at_ns: u64) -> SaRecord {
        let (cipher, integrity, icv_len) = c.suite.codes();
        let mut enc_key = [0u8; 36];
        enc_key[..c.enc_key.len()].copy_from_slice(&c.enc_key);
        let mut auth_key = [0u8; 32];
        auth_key[..c.auth_key.len()].copy_from_slice(&c.auth_key);
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        let encap = c.encap.unwrap_or(UdpEncap { src_port: 0, dst_port: 0 });
        SaRecord {
            spi: c.spi,
            state: SlotState::Live as u8,
            direction: (c.direction == Direction::Out) as u8,
            mode: (c.mode == Mode::Transport) as u8,
            flags: flag(c.esn, FLAG_ESN)
                | flag(c.encap.is_some(), FLAG_UDP_ENCAP)
                | flag(c.ms_flags.boundary, FLAG_BOUNDARY)
                | flag(c.ms_flags.guaranteed_encryption, FLAG_GUARANTEED_ENCRYPTION),
            dst: c.dst.into(),
            src: c.src.into(),
            reqid: c.reqid,
            policy_id: c.policy_id,
            cipher,
            integrity,
            icv_len,
            enc_key_len: c.enc_key.len() as u8,
            auth_key_len: c.auth_key.len() as u8,
            df_policy: c.df as u8,
            _pad0: [0; 2],
            replay_window: c.replay_window,
            encap_src_port: encap.src_port,
            encap_dst_port: encap.dst_port,
            enc_key,
            auth_key,
            _pad1: [0; 4],
            ts_local: ts_record(&c.ts_local),
            ts_remote: ts_record(&c.ts_remote),
            soft: c.soft,
            hard: c.hard,
            idle_timeout_secs: c.idle_timeout_secs,
            installed_at_ns,
        }
    }

    /// The placeholder for an SPI reserved by `get_spi`.
    pub fn larval(spi: u32, src: IpAddr, dst: IpAddr, installed_at_ns: u64) -> SaRecord {
        SaRecord {
            spi,
            state: SlotState::Larval as u8,
            dst: dst.into(),
            src: src.into(),
            installed_at_ns,
            ..SaRecord::zeroed()
        }
    }

    /// The typed configuration of a live record.
    pub fn to_config(&self) -> Result<SaConfig, CorruptRecord> {
        let suite = Suite::from_codes(self.cipher, self.integrity, self.icv_len)
            .ok_or(CorruptRecord("unknown suite"))?;
        let (enc_len, auth_len) = (self.enc_key_len as usize, self.auth_key_len as usize);
        if enc_len > self.enc_key.len() || auth_len > self.auth_key.len() {
            return Err(CorruptRecord("key length"));
        }
        let has = |bit: u8| self.flags & bit != 0;
        Ok(SaConfig {
            spi: self.spi,
            direction: self.direction(),
            mode: if self.mode == 1 { Mode::Transport } else { Mode::Tunnel },
            src: self.src.into(),
            dst: self.dst.into(),
            encap: has(FLAG_UDP_ENCAP)
                .then_some(UdpEncap { src_port: self.encap_src_port, dst_port: self.encap_dst_port }),
            suite,
            enc_key: Zeroizing::new(self.enc_key[..enc_len].to_vec()),
            auth_key: Zeroizing::new(self.auth_key[..auth_len].to_vec()),
            esn: has(FLAG_ESN),
            replay_window: self.replay_window,
            df: match self.df_policy {
                1 => DfPolicy::Set,
                2 => DfPolicy::Clear,
                _ => DfPolicy::Copy,
            },
            ts_local: ts_config(&self.ts_local),
            ts_remote: ts_config(&self.ts_remote),
            soft: self.soft,
            hard: self.hard,
            idle_timeout_secs: self.idle_timeout_secs,
            ms_flags: MsSaFlags {
                boundary: has(FLAG_BOUNDARY),
                guaranteed_encryption: has(FLAG_GUARANTEED_ENCRYPTION),
            },
            reqid: self.reqid,
            policy_id: self.policy_id,
        })
    }
}

fn ts_record(ts: &TrafficSelector) -> TsRecord {
    TsRecord {
        start: ts.start.into(),
        end: ts.end.into(),
        start_port: ts.start_port,
        end_port: ts.end_port,
        proto: ts.proto,
        _pad: [0; 3],
    }
}

fn ts_config(ts: &TsRecord) -> TrafficSelector {
    TrafficSelector {
        start: ts.start.into(),
        end: ts.end.into(),
        proto: ts.proto,
        start_port: ts.start_port,
        end_port: ts.end_port,
    }
}
