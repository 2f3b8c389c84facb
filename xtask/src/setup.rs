//! What `cargo xtask ci` needs beyond a Rust toolchain, installed when it is missing.
//!
//! The README promises that `cargo xtask ci` works on a fresh machine with only a Rust toolchain
//! and the system's package manager: cargo-deny comes from crates.io (`cargo install --locked`),
//! PostgreSQL's server binaries from the system's packages when we may install them (root with
//! apt-get), and otherwise the message says exactly which command installs them.

use std::process::{Command, Stdio};

use crate::{cargo, run};

/// Installs cargo-deny with `cargo install --locked` unless `cargo deny` already runs.
pub(crate) fn ensure_cargo_deny() -> Result<(), String> {
    let mut probe = cargo();
    probe.args(["deny", "--version"]);
    if succeeds(probe) {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-deny", "--locked"]);
    run(
        "installing cargo-deny (cargo install cargo-deny --locked)",
        install,
    )
}

/// Makes sure PostgreSQL's server programs (`initdb`, `pg_ctl`) and `openssl` (for the test
/// cluster's certificates) are there: installs them through apt-get when running as root on a
/// Debian-like system, else says what to run.
pub(crate) fn ensure_postgres() -> Result<(), String> {
    let missing_server = crate::postgres::find_binaries().is_err();
    let missing_openssl = !on_path("openssl");
    if !missing_server && !missing_openssl {
        return Ok(());
    }
    let mut packages = Vec::new();
    if missing_server {
        packages.push("postgresql");
    }
    if missing_openssl {
        packages.push("openssl");
    }
    if crate::postgres::running_as_root() && on_path("apt-get") {
        let mut update = Command::new("apt-get");
        update.arg("update");
        run("refreshing the package lists (apt-get update)", update)?;
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(
            &format!(
                "installing the test database (apt-get install {})",
                packages.join(" ")
            ),
            install,
        )?;
        return crate::postgres::find_binaries().map(|_| ());
    }
    Err(format!(
        "the tests need a PostgreSQL server (initdb and pg_ctl) and openssl; missing: {}. \
         Install them, then run `cargo xtask ci` again:\n  \
         Debian/Ubuntu: sudo apt-get install -y postgresql openssl\n  \
         Fedora/RHEL:   sudo dnf install -y postgresql-server openssl\n  \
         macOS:         brew install postgresql@17 openssl\n\
         (initdb is looked for in /usr/lib/postgresql/*/bin, then in PATH)",
        packages.join(", ")
    ))
}

fn succeeds(mut command: Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
