//! Teacher import: inspection, block cuts.

pub mod cuts;
pub mod check;
pub mod convert;
pub mod inspect;
