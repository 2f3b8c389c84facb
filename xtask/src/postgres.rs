//! A throwaway PostgreSQL cluster for the tests that need a real server.
//!
//! `cargo xtask pg -- <command>` creates a cluster in a fresh temporary directory, listening on
//! 127.0.0.1 only (a random free port, its unix socket in a private directory), creates the
//! `cannectors_test` database, runs the command with `CANNECTORS_TEST_POSTGRES_URL` set, then
//! stops the cluster and removes the directory, whether the command passed or not.
//!
//! Authentication is scram-sha-256 with a known password, so that a test can also prove what
//! happens with a wrong one. The server also accepts TLS, with a certificate for 127.0.0.1
//! signed by a throwaway CA (made with the `openssl` program that Debian's PostgreSQL depends
//! on); the CA file is handed over in `CANNECTORS_TEST_POSTGRES_CA`. PostgreSQL refuses to run as root: as root, `initdb` and `pg_ctl`
//! run through `runuser -u postgres --` in a directory owned by `postgres`.

use std::env;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use cannectors_test_support::postgres::{CA_VARIABLE, URL_VARIABLE};

const USER: &str = "cannectors";
const PASSWORD: &str = "cannectors-test";
const DATABASE: &str = "cannectors_test";

/// Starts a cluster, runs `command` against it and removes the cluster again.
pub(crate) fn run_with_cluster(command: &[String]) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("pg: name the command to run, e.g. \
                    `cargo xtask pg -- cargo test -p cannectors-input-db`"
            .to_owned());
    };
    let mut child = Command::new(program);
    child.args(args);
    let cluster = attach(&mut child)?;
    let status = child
        .status()
        .map_err(|e| format!("pg: cannot start `{program}`: {e}"));
    // Dropping the cluster stops it; do so before reporting, so that its log lines come first.
    drop(cluster);
    let status = status?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pg: `{}` failed ({status})", command.join(" ")))
    }
}

/// Starts a cluster and points `command` at it (`CANNECTORS_TEST_POSTGRES_URL`,
/// `CANNECTORS_TEST_POSTGRES_CA`); keep the returned cluster alive while the command runs.
pub(crate) fn attach(command: &mut Command) -> Result<Cluster, String> {
    let cluster = Cluster::start()?;
    eprintln!(
        "pg: PostgreSQL listening on 127.0.0.1:{} ({URL_VARIABLE} is set)",
        cluster.port
    );
    command
        .env(URL_VARIABLE, cluster.url())
        .env(CA_VARIABLE, cluster.ca_file());
    Ok(cluster)
}

/// A running cluster; dropping it stops the server and removes its directory.
pub(crate) struct Cluster {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl Cluster {
    /// Creates and starts a cluster with a database for the tests.
    pub(crate) fn start() -> Result<Cluster, String> {
        let bin = find_binaries()?;
        let as_postgres = running_as_root();
        let root =
            env::temp_dir().join(format!("cannectors-pg-{}-{}", std::process::id(), nanos()));
        fs::create_dir(&root).map_err(|e| format!("pg: cannot create {}: {e}", root.display()))?;
        let mut cluster = Cluster {
            root,
            bin,
            port: 0,
            as_postgres,
            running: false,
        };
        cluster.init()?;
        // Another process may take the port between probing and binding it: try a few.
        let mut last_error = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => {
                    cluster.running = true;
                    cluster.create_database()?;
                    return Ok(cluster);
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The URL of the test database, with the password of the test user.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// The CA certificate that signed the server's TLS certificate.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.root.join("tls").join("ca.pem")
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn init(&self) -> Result<(), String> {
        let password_file = self.root.join("password");
        fs::write(&password_file, PASSWORD)
            .map_err(|e| format!("pg: cannot write {}: {e}", password_file.display()))?;
        let socket_dir = self.root.join("socket");
        fs::create_dir(&socket_dir)
            .map_err(|e| format!("pg: cannot create {}: {e}", socket_dir.display()))?;
        let tls = self.root.join("tls");
        make_certificates(&tls)?;
        if self.as_postgres {
            chown_to_postgres(&self.root)?;
        }
        let mut initdb = self.tool("initdb");
        initdb
            .arg("--pgdata")
            .arg(self.data_dir())
            .args([
                "--username",
                USER,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
            ])
            .args(["--locale", "C", "--no-sync"])
            .arg("--pwfile")
            .arg(&password_file);
        run_quietly("initdb", initdb)?;
        // Loopback only, the socket in our own directory (not the shared /var/run/postgresql),
        // and durability off: the cluster is thrown away after the run.
        let settings = format!(
            "\n# cannectors test cluster\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nmax_connections = 200\nssl = on\n\
             ssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            socket_dir.display(),
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        );
        let conf = self.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)
            .map_err(|e| format!("pg: cannot read {}: {e}", conf.display()))?;
        text.push_str(&settings);
        fs::write(&conf, text).map_err(|e| format!("pg: cannot write {}: {e}", conf.display()))
    }

    fn start_server(&self) -> Result<(), String> {
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .args(["start", "--wait", "--timeout", "60", "--pgdata"])
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.root.join("server.log"))
            .args(["--options", &format!("-p {}", self.port)]);
        run_quietly("pg_ctl start", pg_ctl).map_err(|e| {
            let log = fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    fn create_database(&self) -> Result<(), String> {
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--username",
                USER,
            ])
            .arg(DATABASE)
            .env("PGPASSWORD", PASSWORD);
        run_quietly("createdb", createdb)
    }

    fn stop(&mut self) -> Result<(), String> {
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .args(["stop", "--wait", "--mode", "fast", "--pgdata"])
            .arg(self.data_dir());
        run_quietly("pg_ctl stop", pg_ctl)?;
        self.running = false;
        Ok(())
    }

    /// A PostgreSQL program, run as `postgres` when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running
            && let Err(e) = self.stop()
        {
            eprintln!("pg: {e}");
        }
        if let Err(e) = fs::remove_dir_all(&self.root) {
            eprintln!("pg: cannot remove {}: {e}", self.root.display());
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/*/bin`
/// (Debian's layout), else wherever `PATH` has them.
pub(crate) fn find_binaries() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "pg: PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or PATH); \
             install it with `apt-get install -y postgresql`"
                .to_owned()
        })
}

/// A CA and a server certificate for 127.0.0.1 (and localhost) signed by it, valid two days.
fn make_certificates(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;

    fs::create_dir(dir).map_err(|e| format!("pg: cannot create {}: {e}", dir.display()))?;
    let extensions = dir.join("server.ext");
    fs::write(
        &extensions,
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .map_err(|e| format!("pg: cannot write {}: {e}", extensions.display()))?;
    let openssl = |args: &[&str]| {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(dir);
        run_quietly("openssl (test certificates)", command)
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=cannectors test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    // PostgreSQL refuses a key that others can read.
    let key = dir.join("server.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("pg: cannot restrict {}: {e}", key.display()))
}

pub(crate) fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    let mut chown = Command::new("chown");
    chown.args(["-R", "postgres:postgres"]).arg(dir);
    run_quietly("chown", chown)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("pg: cannot find a free port on 127.0.0.1: {e}"))
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Runs a setup step, showing its output only when it fails.
fn run_quietly(step: &str, mut command: Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("pg: cannot start {step} ({command:?}): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pg: {step} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
