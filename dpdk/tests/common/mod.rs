//! EAL arguments for tests: no hugepages, no PCI, no shared files, so they run on any Linux
//! machine with DPDK installed. DPDK allows one EAL per process, hence one test binary (and one
//! #[test]) per EAL configuration.

pub fn eal_args(extra: &[&str]) -> Vec<String> {
    [
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-m",
        "512",
        "--log-level=lib.eal:warning",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}
