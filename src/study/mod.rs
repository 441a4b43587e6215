//! `dnas study`: search quality, measured. A truth set of architectures retrained from scratch
//! with one fixed recipe ([`truth`]), sampled deterministically and stratified over depths and
//! MACs ([`sample`]); every strategy's predictor ([`predict`]) scored against it by rank
//! correlation with bootstrap intervals ([`metrics`], [`rank`]); and a strategy's pick under a
//! budget against random architectures of the same budget ([`pick`]).

pub mod metrics;
pub mod pick;
pub mod picks;
pub mod plan;
pub mod predict;
pub mod rank;
pub mod recipes;
pub mod reliability;
pub mod retrain;
pub mod sample;
pub mod truth;
