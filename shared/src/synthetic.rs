//! Deterministic SAs for the demo, the benchmarks and the concurrency tests. Every field of
//! `synthetic_sa(spi, version)` is derived from the SPI and the version, so a reader can tell a
//! consistent record (equal to the one for some version) from a torn one (a mix of two).

use std::net::{IpAddr, Ipv4Addr};

use zeroize::Zeroizing;

use crate::sa::{AesKeySize, DfPolicy, Direction, Limits, Mode, MsSaFlags, SaConfig, Suite, TrafficSelector};

/// The destination every synthetic inbound SA shares (a gateway address in 198.18.0.0/15).
pub const SYNTHETIC_DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

/// The SA with this SPI at this version. Keys and ESN, fixed for an SA's life, depend on the SPI
/// only; the version changes fields spread over the whole record (what `update_sa` may change)
/// and is kept in the soft packet limit.
pub fn synthetic_sa(spi: u32, version: u32) -> SaConfig {
    let mix = |salt: u64| (spi as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (version as u64).wrapping_mul(salt);
    let key_bytes = |n: usize| -> Vec<u8> {
        let seed = (spi as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
        (0..n).map(|i| (seed >> ((i % 8) * 8)) as u8 ^ i as u8).collect()
    };
    let peer = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (spi & 0xffff) | 0x1_0000));
    SaConfig {
        spi,
        direction: Direction::In,
        mode: Mode::Tunnel,
        src: peer,
        dst: SYNTHETIC_DST,
        encap: None,
        suite: Suite::AesGcm { key: AesKeySize::Aes256, icv_len: 16 },
        enc_key: Zeroizing::new(key_bytes(36)),
        auth_key: Zeroizing::new(Vec::new()),
        esn: spi % 2 == 1,
        replay_window: 1024,
        df: DfPolicy::Copy,
        ts_local: TrafficSelector::any_of_family(SYNTHETIC_DST),
        ts_remote: TrafficSelector { start: peer, end: peer, proto: 0, start_port: 0, end_port: u16::MAX },
        soft: Limits { bytes: 0, packets: version as u64, seconds: 3_600 },
        hard: Limits { bytes: 0, packets: 0, seconds: 3_600 + (mix(5) % 600) },
        idle_timeout_secs: mix(7) % 1_000,
        ms_flags: MsSaFlags { boundary: version.is_multiple_of(3), guaranteed_encryption: version.is_multiple_of(2) },
        reqid: 0,
        policy_id: spi ^ version,
    }
}

/// The version of a record if it is exactly `synthetic_sa(spi, version)` for that version.
pub fn synthetic_version(config: &SaConfig) -> Option<u32> {
    let version = u32::try_from(config.soft.packets).ok()?;
    (synthetic_sa(config.spi, version) == *config).then_some(version)
}
