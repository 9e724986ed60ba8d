//! Turning flags, `KAIROS_*` environment variables and the TOML config file into the
//! libraries' configs.
//!
//! Precedence, the same for every setting of every command: a flag, then its `KAIROS_*`
//! variable, then `<home>/config.toml` (or `--config FILE`), then the defaults documented in
//! `--help` and in the libraries' `Default` impls. [`layers`] is the one mechanism that
//! implements it; [`daemon`] and [`directory`] only say what each program's settings are and
//! how they fill the library config.

pub mod daemon;
pub mod directory;
pub mod layers;

pub use layers::home_or_default;

#[cfg(test)]
mod tests;
