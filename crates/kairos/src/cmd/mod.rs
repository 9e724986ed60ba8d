//! One module per subcommand.
pub mod client;
pub mod completions;
pub mod daemon;
pub mod demo;
pub mod devnet;
pub mod directory;
pub mod files;
pub mod man;
pub mod selftest;
