//! One file per exchange and role (strongSwan's `sa/ikev2/tasks`).
pub mod child;
pub mod create_child_initiator;
pub mod create_child_responder;
pub mod ike_auth_initiator;
pub mod ike_auth_responder;
pub mod ike_init_initiator;
pub mod ike_init_responder;
pub mod informational_initiator;
pub mod informational_responder;
pub mod rekey_ike_initiator;
pub mod rekey_ike_responder;
pub mod requests;
