//! Wire codecs. Untrusted bytes enter only through checked `parse` functions that return a
//! [`ikev2::Error`] on anything malformed; `emit` writes exactly `buffer_len` bytes.
pub mod ikev2;
mod reader;

pub use reader::Reader;

/// An IANA registry as an enum whose `Unknown(_)` variant keeps values this code does not know,
/// so they round-trip unchanged.
macro_rules! registry {
    ($(#[$meta:meta])* $name:ident : $repr:ty { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value not in this registry (kept as received).
            Unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> $repr {
                match value {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use registry;
