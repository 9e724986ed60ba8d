//! CLI snapshot tests: the real `kairos` binary run on each case in `tests/cmd/*.toml` (by
//! `trycmd`), its exit code, stdout and stderr compared with the case's `.stdout` / `.stderr`
//! files (`...` on a line of its own elides lines, `[..]` elides within a line).
//!
//! What is pinned: `kairos --help`, `put --help`, `get --help`; the usage errors (exit 2) of a
//! release time without its `+` and of a malformed file id; `get` with no daemon in the home
//! (exit 1); the start of `completions bash` and of `man`, the pages `man --out` writes (exit 0).
//! Exit code 3 (the file is still locked) needs a running network: `tests/cli_e2e.rs`
//! (`put_locked_get_then_released_get`) and `tests/cli_errors.rs` cover it.
//!
//! The cases do not inherit the environment (no `KAIROS_*` value can leak into the help) and
//! set `COLUMNS`, `NO_COLOR` and `TERM=dumb`, so they pass on any terminal and in CI; a case
//! that needs a home uses a relative one in its sandbox, never a path of the machine.
//!
//! After an intended change of the help or a message: `TRYCMD=overwrite cargo test -p kairos
//! --test snapshots`, then review the diff of `tests/cmd/`.

#[test]
fn cli_snapshots() {
    trycmd::TestCases::new()
        .register_bin(
            "kairos",
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_kairos")),
        )
        .case("tests/cmd/*.toml");
}
