//! One module per subcommand.
pub mod client;
pub mod daemon;
pub mod demo;
pub mod devnet;
pub mod directory;
pub mod selftest;
