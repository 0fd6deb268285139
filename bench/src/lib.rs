//! What every benchmark binary shares: command-line options, a fast deterministic generator, and
//! the SAs and packets of the ESP benchmarks.

use shared::sa::{DfPolicy, Direction, Limits, Mode, MsSaFlags, SaConfig, Suite, TrafficSelector};
use zeroize::Zeroizing;

/// The value after `name` on the command line, or `default` if absent or unparseable.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64: cheap enough to sit inside timed loops, reproducible from its seed (not zero).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (Lemire's multiply-shift, no division).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The SA of the ESP benchmarks: tunnel mode from 198.18.0.1 to 198.18.0.2, SPI 0x1000, fixed
/// keys, any traffic.
pub fn esp_sa(suite: Suite, direction: Direction, replay_window: u32) -> SaConfig {
    let any = TrafficSelector::any_of_family("0.0.0.0".parse().unwrap());
    SaConfig {
        spi: 0x1000,
        direction,
        mode: Mode::Tunnel,
        src: "198.18.0.1".parse().unwrap(),
        dst: "198.18.0.2".parse().unwrap(),
        encap: None,
        suite,
        enc_key: Zeroizing::new(vec![7; suite.enc_key_len()]),
        auth_key: Zeroizing::new(vec![9; suite.auth_key_len()]),
        esn: false,
        replay_window,
        df: DfPolicy::Copy,
        ts_local: any,
        ts_remote: any,
        soft: Limits::default(),
        hard: Limits::default(),
        idle_timeout_secs: 0,
        ms_flags: MsSaFlags::default(),
        reqid: 0,
        policy_id: 0,
    }
}

/// An IPv4 UDP packet of `len` bytes from 198.18.1.1 to 198.18.2.2, its header checksum right.
pub fn ipv4_udp(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[..20].copy_from_slice(&[0x45, 0, (len >> 8) as u8, len as u8, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 18, 1, 1, 198, 18, 2, 2]);
    let c = dataplane::wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..28].copy_from_slice(&[0x30, 0x39, 0x9c, 0x40, ((len - 20) >> 8) as u8, (len - 20) as u8, 0, 0]);
    p
}
