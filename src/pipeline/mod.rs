//! The pipeline around the strategies: where a run directory stands ([`status`]) and the
//! cluster scripts that spread a DNA run's blocks over scheduler jobs ([`slurm`]).

pub mod slurm;
pub mod status;
