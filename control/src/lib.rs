//! The IKE control plane. It negotiates SAs and writes them into the shared region through
//! `shared::ops::Writer`.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod daemon;
pub mod ikev2;
pub mod sa_manager;
pub mod wire;
