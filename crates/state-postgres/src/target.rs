//! Which database a connection string reaches, as far as the text tells: for deciding whether
//! a database output writes into the very database that holds the store, so that a batch and
//! its state can be committed in one transaction.
//!
//! Two connection strings are compared by what they resolve to, not as text: a URL and a
//! `key=value` string naming the same server, port, database and user agree; the password,
//! TLS settings, timeouts and the application name do not count. No name is looked up: `localhost` and
//! `127.0.0.1` are different targets here, so that a mismatch only ever costs the stronger
//! guarantee, never claims it for two databases.

use std::net::IpAddr;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::tls::split_tls_settings;

/// The port PostgreSQL listens on unless told otherwise.
const DEFAULT_PORT: u16 = 5432;

/// Where a session of a connection string lands: the servers it tries, in order, the
/// database and user it logs in as, and the `options` it starts with (which may set the
/// `search_path`, and so which schema unqualified table names such as `cannectors_state`
/// resolve to).
///
/// ```
/// use cannectors_state_postgres::DatabaseTarget;
///
/// let url = DatabaseTarget::parse("postgres://app:secret@DB.internal/sync?sslmode=require").unwrap();
/// let keys = DatabaseTarget::parse("host=db.internal port=5432 user=app dbname=sync").unwrap();
/// assert_eq!(url, keys);
/// let other = DatabaseTarget::parse("postgres://app@db.internal/reports").unwrap();
/// assert_ne!(url, other);
/// assert_eq!(url.to_string(), "postgres://app@db.internal:5432/sync");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTarget {
    /// Each server tried, with its port; host names in lower case.
    servers: Vec<(Server, u16)>,
    /// The user; `None`: the user the process runs as.
    user: Option<String>,
    /// The database; the user's name when not given (PostgreSQL's default).
    dbname: Option<String>,
    /// The `options` sent at login (`-c search_path=...` and the like).
    options: Option<String>,
}

/// One server of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Server {
    Name(String),
    Socket(std::path::PathBuf),
    Address(IpAddr),
}

impl DatabaseTarget {
    /// Resolves a `postgres://` URL or a `key=value` connection string; the reason in words
    /// when it is neither.
    pub fn parse(url: &str) -> Result<DatabaseTarget, String> {
        let (text, _tls) = split_tls_settings(url);
        let config: Config = text.parse().map_err(|error| {
            format!("the connection string is not a PostgreSQL connection string ({error})")
        })?;
        Ok(DatabaseTarget::of(&config))
    }

    fn of(config: &Config) -> DatabaseTarget {
        // libpq's rules: `hostaddr` is where a host is reached when both are given; one port
        // stands for every host, or each host has its own.
        let hosts: Vec<Server> = if config.get_hostaddrs().is_empty() {
            config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    Host::Tcp(name) => Server::Name(name.to_ascii_lowercase()),
                    Host::Unix(path) => Server::Socket(path.clone()),
                })
                .collect()
        } else {
            config
                .get_hostaddrs()
                .iter()
                .map(|address| Server::Address(*address))
                .collect()
        };
        let ports = config.get_ports();
        let servers = hosts
            .into_iter()
            .enumerate()
            .map(|(index, server)| {
                let port = match ports {
                    [] => DEFAULT_PORT,
                    [one] => *one,
                    many => many.get(index).copied().unwrap_or(DEFAULT_PORT),
                };
                (server, port)
            })
            .collect();
        let user = config.get_user().map(str::to_owned);
        let dbname = config
            .get_dbname()
            .map(str::to_owned)
            .or_else(|| user.clone());
        DatabaseTarget {
            servers,
            user,
            dbname,
            options: config.get_options().map(str::to_owned),
        }
    }

    /// How this target differs from `other`, in words naming the first setting that
    /// differs; `None` when they are the same database.
    pub fn difference(&self, other: &DatabaseTarget) -> Option<&'static str> {
        if self.servers != other.servers {
            Some("the server (host and port)")
        } else if self.dbname != other.dbname {
            Some("the database name")
        } else if self.user != other.user {
            Some("the user")
        } else if self.options != other.options {
            Some("the `options` (a search_path there picks the schema)")
        } else {
            None
        }
    }
}

/// `postgres://user@host:port/database`, the form messages show a server in.
impl std::fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("postgres://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        for (index, (server, port)) in self.servers.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            match server {
                Server::Name(name) => write!(f, "{name}:{port}")?,
                Server::Socket(path) => write!(f, "{}:{port}", path.display())?,
                Server::Address(address) => write!(f, "{address}:{port}")?,
            }
        }
        write!(f, "/{}", self.dbname.as_deref().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> DatabaseTarget {
        DatabaseTarget::parse(url).unwrap()
    }

    #[test]
    fn the_password_tls_and_timeouts_do_not_count() {
        assert_eq!(
            target("postgres://app:one@db:5432/sync"),
            target(
                "postgresql://app:two@db/sync?sslmode=require&connect_timeout=3&\
                 application_name=x"
            )
        );
    }

    #[test]
    fn a_url_and_a_key_value_string_of_the_same_database_agree() {
        assert_eq!(
            target("postgres://app@Db.Internal:6432/sync"),
            target("host=db.internal port=6432 user=app dbname=sync password=x")
        );
    }

    #[test]
    fn the_database_defaults_to_the_user_name() {
        assert_eq!(target("postgres://app@db"), target("postgres://app@db/app"));
    }

    #[test]
    fn each_setting_that_picks_the_database_tells_them_apart() {
        let base = target("postgres://app@db:5432/sync");
        for (other, differs) in [
            ("postgres://app@db:5433/sync", "the server (host and port)"),
            (
                "postgres://app@127.0.0.1:5432/sync",
                "the server (host and port)",
            ),
            ("postgres://app@db:5432/reports", "the database name"),
            ("postgres://ops@db:5432/sync", "the user"),
            (
                "postgres://app@db:5432/sync?options=-c%20search_path%3Dother",
                "the `options` (a search_path there picks the schema)",
            ),
        ] {
            assert_eq!(base.difference(&target(other)), Some(differs), "{other}");
        }
        assert_eq!(base.difference(&target("postgres://app:pw@db/sync")), None);
    }

    #[test]
    fn a_text_that_is_no_connection_string_is_refused() {
        let error = DatabaseTarget::parse("postgres://app@db:notaport/x").unwrap_err();
        assert!(error.starts_with("the connection string is not"), "{error}");
    }
}
