//! The time-stamp counter, for cheap timing in the poll loops.

/// The current TSC value.
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC; no preconditions.
    unsafe { dpdk_sys::shim_rte_rdtsc() }
}

/// TSC ticks per second as measured by the EAL (0 before the EAL is initialised).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at start-up; no preconditions.
    unsafe { dpdk_sys::shim_rte_get_tsc_hz() }
}
