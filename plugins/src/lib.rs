//! # flightline-plugins
//!
//! Built-in, statically linked extensions of Flightline. For now: the query validators
//! ([`validators`]) and the pipeline that bundles them ([`builtin_pipeline`]).
#![warn(missing_docs)]

pub mod validators;

pub use validators::{
    ValidatorLimits, builtin_pipeline, builtin_pipeline_with, codes, default_validators,
    validators_with,
};
