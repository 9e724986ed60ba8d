//! The CLI owns its output and reads and writes pipes: over a real devnet, `get` never follows
//! or replaces a link or a special file, finds a name clash before fetching anything, replaces
//! a file only with --force, streams to standard output with `-o -`; `put -` reads stdin.

mod common;
use common::*;
use std::path::Path;

fn get(net: &Net, id: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["get", id, "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    net.kairos(5, &args)
}

#[test]
fn get_owns_its_output_and_pipes_work() {
    let net = Net::start(6, false);
    let work = net.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // put - reads standard input and seals it under --name.
    let release = now() + 5;
    let release_text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(release),
    )
    .to_string();
    let o = net.kairos_stdin(
        0,
        &["put", "-", "--name", "piped.bin", "-r", &release_text],
        &data,
    );
    assert!(o.status.success(), "put -: {}", stderr(&o));
    let id = stdout(&o).lines().last().unwrap().trim().to_owned();
    assert!(std::fs::read_dir(net.home(0).join("spool"))
        .unwrap()
        .next()
        .is_none());

    // A clash is found before anything is fetched: still locked, yet the answer is the clash.
    let existing = work.join("existing.bin");
    std::fs::write(&existing, b"mine").unwrap();
    let o = get(&net, &id, &existing, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));

    wait_until(release + 1);
    // Links (to a file, or dangling) and special files are refused, with or without --force.
    let link = work.join("link.txt");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let dangling = work.join("dangling");
    std::os::unix::fs::symlink(work.join("nowhere"), &dangling).unwrap();
    for target in [&link, &dangling] {
        let o = get(&net, &id, target, &["--force"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
        assert!(std::fs::symlink_metadata(target).unwrap().is_symlink());
    }
    assert!(!work.join("nowhere").exists());
    let o = get(&net, &id, Path::new("/dev/null"), &["--force"]);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&existing).unwrap(), b"mine");

    // --force replaces a regular file; into a directory the sealed name is used.
    let o = get(&net, &id, &existing, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&existing).unwrap() == data);
    let o = get(&net, &id, &work, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(work.join("piped.bin")).unwrap() == data);
    let o = get(&net, &id, &work, &[]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    let names: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}"); // existing, link, dangling, piped.bin

    // -o - writes the verified bytes to standard output, and nothing else.
    let o = get(&net, &id, Path::new("-"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        o.stdout == data,
        "stdout differs ({} bytes)",
        o.stdout.len()
    );

    // A relative output is the CLI's own working directory, not the daemon's.
    let o = std::process::Command::new(KAIROS)
        .args(["get", &id, "-o", "rel.bin"])
        .env("KAIROS_HOME", net.home(5))
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(work.join("rel.bin")).unwrap() == data);
}

/// A reader that goes away (`kairos man | head -1`) ends the command quietly with success:
/// no panic, no error about the closed pipe.
#[test]
fn generated_text_to_a_closed_pipe_is_not_an_error() {
    for args in [&["completions", "bash"][..], &["man"]] {
        let mut child = std::process::Command::new(KAIROS)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the child has written: its write meets a closed pipe.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}
