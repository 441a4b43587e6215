//! Search: ranking candidates and selecting the architecture (DNA steps 3–4).

pub mod select;
