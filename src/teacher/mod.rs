//! Teacher import: inspection, block cuts.

pub mod check;
pub mod convert;
pub mod cuts;
pub mod inspect;
pub mod layout;
