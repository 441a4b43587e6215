pub mod interleave;
