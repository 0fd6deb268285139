//! ESP (RFC 4303): SA runtime contexts, outbound encapsulation, inbound decapsulation.

pub mod cbc_iv;
pub mod decrypt;
pub mod ecn;
pub mod flow;
pub mod encrypt;
pub mod natt;
pub mod replay;
pub mod sa;
pub mod selector;
pub mod suite;
