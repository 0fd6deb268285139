//! The ESP dataplane. It reads SAs and policies from the shared region (crate `shared`) and
//! transforms packets; the DPDK poll-mode loop that feeds it comes with the gateway issue.
#![forbid(unsafe_code)]
