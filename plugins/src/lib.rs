//! # flightline-plugins
//!
//! Built-in, statically linked extensions of Flightline: the batch processors
//! ([`processors`], built by name with [`processors::build_processor`]), the query validators
//! ([`validators`]) and the pipeline that bundles them ([`builtin_pipeline`]).
#![warn(missing_docs)]

pub mod error;
pub mod postgres;
pub mod processors;
pub mod validators;

pub use error::PluginsError;
pub use processors::{build_processor, processor_names};

pub use validators::{
    ValidatorLimits, builtin_pipeline, builtin_pipeline_with, codes, default_validators,
    validators_with,
};
