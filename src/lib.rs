pub mod config;
pub mod diag;
pub mod engine;
pub mod model;
pub mod strategy;
