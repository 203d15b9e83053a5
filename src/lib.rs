pub mod config;
pub mod diag;
pub mod model;
pub mod strategy;
