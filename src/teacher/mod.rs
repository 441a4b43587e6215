//! Teacher import: inspection, block cuts.

#[cfg(feature = "torch")]
pub mod check;
#[cfg(feature = "torch")]
pub mod convert;
pub mod cuts;
pub mod input;
pub mod inspect;
pub mod layout;
