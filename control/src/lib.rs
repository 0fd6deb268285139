//! The IKE control plane. It negotiates SAs and writes them into the shared region through
//! `shared::ops::Writer`; the IKEv2 engine comes with its own issue.
#![forbid(unsafe_code)]
