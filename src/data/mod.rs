//! Datasets and image preprocessing.

pub mod photos;
