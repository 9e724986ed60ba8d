//! Command-line interface: every subcommand, flag, environment variable and default.
//!
//! Settings come from, in order of precedence: command-line flags, `KAIROS_*` environment
//! variables, the TOML file `<home>/config.toml` (or `--config FILE`), built-in defaults.

use crate::units::{self, ByteSize, Coding, Span};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "kairos",
    version,
    about = "Anonymous peer-to-peer file store with a time-lock",
    long_about = "kairos stores a file on many peers so that nobody can read it before its release time, \
and anyone with its id can rebuild it afterwards. Every block is encrypted with its own key, erasure-coded \
into shards spread over distinct nodes, and its key is Shamir-split among them; peers refuse to serve a \
piece before the release time. All traffic runs over Tor onion services.\n\n\
Quick start: `kairos demo` runs the whole story on a local network.",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error, 3 file is still locked (time-lock not reached)."
)]
pub struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `kairos_node=debug`).
    #[arg(long, global = true, env = "KAIROS_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the node daemon: holds the identity, serves the peer API and the local API.
    Daemon(DaemonArgs),
    /// Run a directory (bootstrap) server: the list of live nodes and the signed manifests.
    Directory(DirectoryArgs),
    /// Tell the running daemon to join the network (subscribe to its directories).
    Start(ClientArgs),
    /// Show the daemon's identity, address, directories, peers, pieces held and quota.
    Status(StatusArgs),
    /// Upload a file that nobody can read before its release time; prints the file id last.
    Put(PutArgs),
    /// Download a released file by its id.
    Get(GetArgs),
    /// Show a file's release time and, once released (or if uploaded here), its lock and coding.
    ///
    /// Shows what the network says about a file: its release time, and — after release, or
    /// for this node's own uploads — its coding, size, lock (drand chain and round) and holders.
    Info(InfoArgs),
    /// List this node's own uploads: id, size, release time, lock, name.
    Ls(LsArgs),
    /// Audit the holders of one of this node's uploads: do they still hold their whole pieces?
    ///
    /// Every holder proves random 1 KiB chunks of its piece against the manifest's piece hash
    /// (never giving out the piece or its key share). Per block: pieces proven, missing (the
    /// holder says it lost them), failing the audit (partial or damaged copy) and unreachable.
    /// A block needs k of its n pieces; exit code 1 when some block has fewer than k left.
    Check(InfoArgs),
    /// Audit one of this node's uploads now and rebuild every lost piece on a new node.
    ///
    /// A lost piece is rebuilt bit for bit from k healthy pieces of its block (their shards
    /// only) and the file's repair seed, stored on a node that holds nothing of that block,
    /// and the placement is republished with seq + 1; the file id does not change. The daemon
    /// also does this on its own every --audit-interval. Exit code 1 when a block is beyond
    /// repair (fewer than k healthy pieces).
    Repair(InfoArgs),
    /// Take one of this node's uploads back before its release: it will never open.
    ///
    /// Every holder is asked to delete its pieces, and every directory replaces the manifest
    /// and placement with the uploader's signed tombstone (siblings get it too); a get then
    /// says "revoked by its uploader". Only the uploader's node can revoke, and only before the
    /// release time. Holders that cannot be reached keep their pieces until their retention
    /// ends, but nobody can find or open them.
    Revoke(InfoArgs),
    /// Start a local network (a directory and N daemons on loopback) until Ctrl-C.
    Devnet(DevnetArgs),
    /// Run the whole story on a throw-away local network: put, get refused, wait, get, compare.
    Demo(DemoArgs),
    /// Seal and open a sample file in memory with pieces lost and corrupted; no network.
    Selftest(SelftestArgs),
    /// Print a shell completion script (e.g. `kairos completions bash`).
    Completions(CompletionsArgs),
    /// Print the man page (roff); with --out, write one page per command into a directory.
    Man(ManArgs),
}

/// How a server reaches the network.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Tor onion services and Tor SOCKS for everything (default; anonymous).
    Tor,
    /// Plain HTTP on loopback. NOT anonymous: development and tests only.
    Direct,
}

// The server commands' settings structs below are both clap's parse of flags and `KAIROS_*`
// variables and serde's shape of the config file: every layered field is an `Option` that is
// `None` unless given, and its serde name is the file's key (see `settings::layers`).

/// Options shared by the programs that run a Tor client (the `[tor]` table in config.toml).
#[derive(Args, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TorArgs {
    /// `tor` binary to launch (default: found on PATH, /usr/sbin or /usr/bin).
    #[arg(long, env = "KAIROS_TOR_BINARY")]
    pub tor_binary: Option<PathBuf>,
    /// Use an already-running tor through this control port (127.0.0.1:PORT) instead of
    /// launching one; it must allow cookie authentication.
    #[arg(long, env = "KAIROS_TOR_CONTROL")]
    pub tor_control: Option<std::net::SocketAddr>,
    /// Extra torrc lines for the launched tor, one per line (e.g. a private test network's
    /// `DirAuthority` lines).
    #[arg(long, env = "KAIROS_TOR_CONFIG")]
    pub tor_config: Option<PathBuf>,
    /// Seconds to wait for tor to bootstrap.
    #[arg(long, env = "KAIROS_TOR_TIMEOUT")]
    pub tor_timeout: Option<u64>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// Home directory: identity key, database, local socket, config.toml [default: ~/.kairos].
    #[arg(long, env = "KAIROS_HOME")]
    pub home: Option<PathBuf>,
    /// Config file (default `<home>/config.toml`, optional).
    #[arg(long, env = "KAIROS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: DaemonSettings,
    /// Let the direct transport talk to non-loopback addresses (never anonymous).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Write `key=...`, `addr=...` and `socket=...` lines to this file once serving (for scripts).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// The daemon's layered settings; the config file takes the same keys.
#[derive(Args, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// Transport [default: tor].
    #[arg(long, value_enum, env = "KAIROS_TRANSPORT")]
    pub transport: Option<TransportKind>,
    /// Address of a directory (`host:port`, an .onion in Tor mode); repeat for several.
    #[arg(long = "directory", env = "KAIROS_DIRECTORIES", value_delimiter = ',')]
    pub directories: Option<Vec<String>>,
    /// Where the peer API listens [default: 127.0.0.1:0; in Tor mode only tor connects to it].
    #[arg(long, env = "KAIROS_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Address announced to others (direct mode only; in Tor mode it is the onion address).
    #[arg(long, env = "KAIROS_ADVERTISE")]
    pub advertise: Option<String>,
    /// Storage offered to other users' pieces, e.g. `10GiB`, `500MB` [default: 10GiB].
    #[arg(long, env = "KAIROS_QUOTA")]
    pub quota: Option<ByteSize>,
    /// Refuse pieces whose release time is further ahead than this [default: 365d].
    #[arg(long, env = "KAIROS_MAX_RELEASE")]
    pub max_release: Option<Span>,
    /// Delete pieces this long after their release [default: 30d].
    #[arg(long, env = "KAIROS_RETENTION")]
    pub retention: Option<Span>,
    /// Re-subscribe to the directories this often [default: 60s].
    #[arg(long, env = "KAIROS_HEARTBEAT")]
    pub heartbeat: Option<Span>,
    /// Coding of this node's uploads as `K+M`: K data + M parity pieces per block on K+M
    /// distinct nodes; any K rebuild a block, K colluding holders could open it early
    /// [default: 4+2].
    #[arg(long, env = "KAIROS_CODING")]
    pub coding: Option<Coding>,
    /// Pieces uploaded at once by a put (each on its own Tor circuit) [default: 16].
    #[arg(long, env = "KAIROS_UPLOAD_CONCURRENCY")]
    pub upload_concurrency: Option<usize>,
    /// Pieces fetched at once by a get [default: 16].
    #[arg(long, env = "KAIROS_DOWNLOAD_CONCURRENCY")]
    pub download_concurrency: Option<usize>,
    /// Join the network at start instead of waiting for `kairos start`.
    #[arg(long, env = "KAIROS_JOIN")]
    pub join: Option<bool>,
    /// The drand chain of the drand lock (`put --lock drand`, the default when there is one):
    /// `quicknet` (drand's League of Entropy chain, pinned in the binary; its beacons come
    /// through the directories), `none` (peer lock only), or the chain-info JSON file of a
    /// local TEST chain (`kairos devnet` writes one) [default: quicknet over Tor, none direct].
    #[arg(long, env = "KAIROS_LOCK_CHAIN")]
    pub lock_chain: Option<String>,
    /// How often the daemon audits its own unreleased uploads (random chunks of every piece,
    /// proven against the manifest) and repairs blocks that lost pieces; jittered ±25 %.
    /// `0s` turns scheduled audits off (`kairos check` and `kairos repair` still work)
    /// [default: 4h].
    #[arg(long, env = "KAIROS_AUDIT_INTERVAL")]
    pub audit_interval: Option<Span>,
    /// How long this node keeps pieces no published placement references yet: once a key
    /// stored nothing here for this long and its uploader never committed them (the uploader
    /// does right after publishing), they are dropped — junk, and leftovers of interrupted
    /// uploads [default: 6h].
    #[arg(long, env = "KAIROS_PENDING_WINDOW")]
    pub pending_window: Option<Span>,
    /// How long a get keeps asking for a drand beacon that is due but not yet relayed
    /// [default: 60s].
    #[arg(long, env = "KAIROS_BEACON_WAIT")]
    pub beacon_wait: Option<Span>,
    /// A drand HTTP API base URL a get asks for a beacon when no directory has it (through the
    /// transport: over Tor in Tor mode); repeat for several [default: drand's public endpoints
    /// over Tor with quicknet, none otherwise].
    #[arg(
        long = "beacon-upstream",
        env = "KAIROS_BEACON_UPSTREAMS",
        value_delimiter = ','
    )]
    pub beacon_upstreams: Option<Vec<String>>,
    #[command(flatten)]
    #[serde(default)]
    pub tor: TorArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct DirectoryArgs {
    /// Home directory: identity key, database, config.toml [default: ~/.kairos-directory].
    /// Never a node's home (refused: it holds the node's identity).
    #[arg(long, env = "KAIROS_DIRECTORY_HOME")]
    pub home: Option<PathBuf>,
    /// Config file (default `<home>/config.toml`, optional).
    #[arg(long, env = "KAIROS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: DirectoryFlags,
    /// Write `key=...` and `addr=...` lines to this file once serving (for scripts).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// The directory's layered settings that have flags. The config file takes these under their
/// serde names and more: the directory library's `ConfigFile` keys (limits, intervals) too.
#[derive(Args, Debug, Clone, Default, Serialize)]
pub struct DirectoryFlags {
    /// Transport [default: tor].
    #[arg(long, value_enum, env = "KAIROS_TRANSPORT")]
    pub transport: Option<TransportKind>,
    /// Where the API listens [default: 127.0.0.1:7700; in Tor mode 127.0.0.1:0].
    #[arg(long, env = "KAIROS_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// A sibling directory to federate with, as `KEY@host:port`; repeat for several.
    #[arg(long = "sibling", env = "KAIROS_SIBLINGS", value_delimiter = ',', value_parser = units::sibling)]
    pub siblings: Option<Vec<String>>,
    /// Node records expire this long after their last heartbeat [default: 5m].
    #[arg(long, env = "KAIROS_NODE_TTL")]
    pub node_ttl: Option<Span>,
    /// Manifests are deleted this long after their release [default: 30d].
    #[arg(long, env = "KAIROS_RETENTION")]
    #[serde(rename = "manifest_retention")]
    pub retention: Option<Span>,
    /// Pull from siblings this often [default: 30s].
    #[arg(long, env = "KAIROS_SYNC_INTERVAL")]
    pub sync_interval: Option<Span>,
    /// Accept nodes with loopback addresses (development networks; direct transport).
    #[arg(long, env = "KAIROS_ALLOW_LOOPBACK_NODES")]
    pub allow_loopback_nodes: Option<bool>,
    #[command(flatten)]
    pub tor: TorArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Home directory of the daemon to talk to (its local socket lives there) [default: ~/.kairos].
    #[arg(long, env = "KAIROS_HOME")]
    pub home: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// The file id printed by `kairos put`.
    pub file_id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug, Clone)]
pub struct PutArgs {
    /// The file to upload, or `-` to read standard input (name it with --name).
    pub path: PathBuf,
    /// The name sealed with the file (for `-`, default `stdin`; otherwise the file's own name).
    #[arg(long)]
    pub name: Option<String>,
    /// When the file opens: RFC 3339 with an offset (`2026-12-25T10:00:00Z`,
    /// `2026-12-25T10:00:00+01:00`); a date (`2026-12-25` = midnight UTC); a date-time without
    /// an offset, taken in the zone given by --tz (refused without it); or from now (`+90m`,
    /// `+2h`, `+7d`). At most the daemon's --max-release ahead, and before the year 10000.
    #[arg(long, short = 'r')]
    pub release_time: String,
    /// The UTC offset for a --release-time written without one: `+01:00`, `-05:30`, `UTC`.
    #[arg(long, value_parser = crate::release::parse_tz, allow_hyphen_values = true)]
    pub tz: Option<i64>,
    /// The time-lock. `drand`: the file key is also timelock-encrypted to the drand round of
    /// the release time, so nobody can open the file before that round is published, even if
    /// every holder serves its piece early (drand quicknet over Tor; the devnet's test chain on
    /// a devnet). `peer`: holders alone keep the file closed until its release time (networks
    /// without a beacon). Default: drand when the daemon has a chain, else peer.
    #[arg(long, value_enum)]
    pub lock: Option<LockArg>,
    /// Print a JSON result instead of the file id.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `kairos put --lock`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockArg {
    Drand,
    Peer,
}

impl From<LockArg> for kairos_node::LockChoice {
    fn from(a: LockArg) -> Self {
        match a {
            LockArg::Drand => kairos_node::LockChoice::Drand,
            LockArg::Peer => kairos_node::LockChoice::Peer,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    /// The file id printed by `kairos put`.
    pub file_id: String,
    /// Where to write the file: a new file, a directory (the file keeps its uploaded name), or
    /// `-` for standard output. Links and special files are refused; an existing file is
    /// replaced only with --force. The file appears only once it verified as a whole.
    #[arg(long, short = 'o', default_value = ".")]
    pub output: PathBuf,
    /// Replace an existing regular file at the output path.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON result.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DevnetArgs {
    /// Number of daemons.
    #[arg(long, default_value_t = 6)]
    pub nodes: usize,
    /// Directory for the network's homes (`directory/`, `node-0/` ...).
    #[arg(long, env = "KAIROS_HOME")]
    pub home: PathBuf,
    /// Run over a private Tor network started on loopback (needs the `tor` binary).
    #[arg(long)]
    pub tor: bool,
    /// Coding of the nodes' uploads, `K+M` (needs at least K+M nodes) [default: 4+2].
    #[arg(long)]
    pub coding: Option<Coding>,
    /// Extra arguments for every daemon, after `--` (e.g. `-- --upload-concurrency 1`).
    #[arg(last = true)]
    pub daemon_args: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Run over a private Tor network started on loopback (needs the `tor` binary).
    #[arg(long)]
    pub tor: bool,
    /// Size of the demo file in KiB.
    #[arg(long, default_value_t = 10_000)]
    pub size_kib: usize,
    /// Seconds between the start of the upload and the release [default: 8, with --tor 30].
    #[arg(long)]
    pub delay: Option<u64>,
    /// Keep the network's homes in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct SelftestArgs {
    /// Size of the sample in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: usize,
}

#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug, Clone)]
pub struct ManArgs {
    /// Write `kairos.1` and one page per command (`kairos-put.1`, ...) into this directory
    /// instead of printing `kairos.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}
