//! One home, one role: a node's home and a directory's home are never the same directory.
//!
//! Both keep their identity key as `home/identity.key`, so a directory started on a node's home
//! would serve with the node's key (and the other way round). The first start of either writes
//! `home/role` (`node` or `directory`); every start checks it. A home from before the marker
//! is recognised by the other role's database file.
//!
//! Invariant: a server starts only on a home that is empty, or marked (or recognised) as its
//! own role.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// The marker file in a home.
pub const ROLE_FILE: &str = "role";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Node,
    Directory,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Directory => "directory",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Node => Role::Directory,
            Role::Directory => Role::Node,
        }
    }

    fn db_file(self) -> &'static str {
        match self {
            Role::Node => kairos_node::DB_FILE,
            Role::Directory => kairos_directory::DB_FILE,
        }
    }

    /// How to give this role a home of its own.
    fn home_hint(self) -> &'static str {
        match self {
            Role::Node => "--home or KAIROS_HOME (default ~/.kairos)",
            Role::Directory => "--home or KAIROS_DIRECTORY_HOME (default ~/.kairos-directory)",
        }
    }
}

/// Checks that `home` (which exists) is `role`'s, and marks it so on first use.
pub fn claim(home: &Path, role: Role) -> Result<()> {
    let marker = home.join(ROLE_FILE);
    let refuse = |found: &str| -> Result<()> {
        bail!(
            "{} is the home of a {found}, and a {} must not share it (it would use the {found}'s identity key); give the {} its own home with {}",
            home.display(),
            role.name(),
            role.name(),
            role.home_hint()
        )
    };
    match std::fs::read_to_string(&marker) {
        Ok(text) if text.trim() == role.name() => return Ok(()),
        Ok(text) => return refuse(text.trim()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("reading {}", marker.display()))
        }
        Err(_) => {}
    }
    if home.join(role.other().db_file()).exists() {
        return refuse(role.other().name());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .with_context(|| format!("creating {}", marker.display()))?;
    writeln!(f, "{}", role.name()).with_context(|| format!("writing {}", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_serves_one_role() {
        let home = tempfile::tempdir().unwrap();
        claim(home.path(), Role::Node).unwrap();
        claim(home.path(), Role::Node).unwrap();
        let e = claim(home.path(), Role::Directory).unwrap_err().to_string();
        assert!(e.contains("home of a node"), "{e}");
        assert!(e.contains("KAIROS_DIRECTORY_HOME"), "{e}");

        // A directory home from before the marker is recognised by its database.
        let old = tempfile::tempdir().unwrap();
        std::fs::write(old.path().join(kairos_directory::DB_FILE), b"").unwrap();
        let e = claim(old.path(), Role::Node).unwrap_err().to_string();
        assert!(e.contains("home of a directory"), "{e}");
    }
}
