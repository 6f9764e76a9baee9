//! Every clap definition of the command line (DESIGN.md §4). Nothing here
//! touches the store or the network.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod complete;
pub mod generate;

use crate::model::{Authentication, ClientAuth, Environment, Grant};
use crate::output::Format;

const EXIT_CODES: &str = "\
Getting started:
  connctl integration add incident-sync --application \"IT Service Management\"
  printf '%s' \"$PW\" | connctl connection add incident-sync.test --integration incident-sync \\
      --env test --url https://test.example.com/api --user svc.incident --password-stdin
  connctl connection activate incident-sync.test
  connctl connection test incident-sync.test
  connctl connection send --integration incident-sync -X POST -d @event.json

Exit codes:
  0  success
  1  the check failed: test found a problem, send got a non-2xx answer, inbound check denied
  2  usage: bad or missing arguments
  3  not found: a named record does not exist
  4  invalid: bad store or input file, a rule would be broken, a confirmation was declined
  5  secret unavailable: keyring unreachable/locked/timed out, variable unset, file/command failed
  6  network: DNS, connect, MID server, timeout
  7  TLS: handshake, certificate verification, client certificate
  8  authentication: 401/403 from the endpoint, 407 from the MID server, OAuth token refused
  9  renew: `connection test` passed, but a certificate expires within --warn-days (RENEW)

Environment:
  CONNCTL_STORE            the store file (default: <config dir>/connctl/store.toml)
  CONNCTL_OUTPUT           table or json, like -o
  CONNCTL_KEYRING          force a keyring backend: secret-service or keyutils
  CONNCTL_KEYRING_TIMEOUT  seconds before a keyring call gives up (default 5)
  CONNCTL_CMD_TIMEOUT      seconds a cmd: secret source may run (default 30)
  CONNCTL_LOCK_TIMEOUT     seconds a write waits for the store lock, like --lock-timeout (default 30)
  VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, VAULT_TOKEN
                           where Vault/OpenBao is and the token for vault: sources
                           (override the store's [vault] table; else ~/.vault-token)
  CONNCTL_VAULT_AUTH       Vault login method for this run: token, approle or jwt
  CONNCTL_VAULT_TIMEOUT    seconds one Vault request may take (default 30)
  NO_COLOR                 no colors on stderr";

#[derive(Debug, Parser)]
#[command(
    name = "connctl",
    version,
    about = "Manage integrations and their connections: endpoints, credentials, MID servers, and real authenticated sends",
    long_about = "connctl keeps, per integration and environment, everything needed to send messages to a \
remote system (endpoint, Basic/OAuth 2.0/mutual-TLS authentication, MID server) and the inbound user the \
remote system authenticates as. One connection per integration is active at a time.\n\n\
Records live in a TOML store; secret values live in the OS keyring or come from env:/file:/cmd:/vault: \
sources, and are never printed.",
    after_long_help = EXIT_CODES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The store file [default: <config dir>/connctl/store.toml]
    #[arg(long, global = true, env = "CONNCTL_STORE", value_name = "PATH")]
    pub store: Option<PathBuf>,

    /// Output format for data on stdout
    #[arg(
        short = 'o',
        long,
        global = true,
        env = "CONNCTL_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub output: Format,

    /// Print only data and errors: no status lines or hints
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More detail on stderr (-vv for more); secrets stay redacted
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No colors on stderr (also: NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Answer yes to confirmations (sends through production connections)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Seconds a write waits for another connctl's store lock (0: do not wait)
    #[arg(
        long,
        global = true,
        env = "CONNCTL_LOCK_TIMEOUT",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = crate::limits::lock_timeout_arg
    )]
    pub lock_timeout: std::time::Duration,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Integrations: named flows of messages to and from one remote system
    #[command(subcommand)]
    Integration(IntegrationCommand),
    /// Connections: how an integration reaches one environment of the remote system
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// OAuth 2.0 profiles: how to obtain access tokens
    #[command(subcommand, name = "oauth-profile")]
    OauthProfile(OauthProfileCommand),
    /// Protocol profiles: client certificate, key and CA bundle for mutual TLS
    #[command(subcommand, name = "protocol-profile")]
    ProtocolProfile(ProtocolProfileCommand),
    /// MID servers: HTTP(S) forward proxies for endpoints behind a firewall
    #[command(subcommand, name = "mid-server")]
    MidServer(MidServerCommand),
    /// Inbound users: the identities remote systems authenticate as when they send to us
    #[command(subcommand, name = "inbound-user")]
    InboundUser(InboundUserCommand),
    /// Check or serve inbound traffic from remote systems
    #[command(subcommand)]
    Inbound(InboundCommand),
    /// Print the whole store (secret sources only, never values) as TOML, or JSON with -o json
    Export(ExportArgs),
    /// Add the records of an exported file to the store
    #[command(after_help = "Examples:\n  connctl export > connctl-backup.toml\n  \
connctl import connctl-backup.toml --dry-run\n  \
connctl --store old/store.toml export | connctl import -")]
    Import(ImportArgs),
    /// Check the keyring, every secret and orphan keyring entries
    #[command(
        after_help = "With vault: sources or a [vault] table, doctor also logs in to Vault and \
shows its address, the login method and the token's time left.\n\n\
Examples:\n  connctl doctor\n  \
VAULT_ADDR=https://vault.example.com:8200 connctl doctor -o json | jq .vault\n  \
connctl doctor -o json | jq .orphans\n  \
connctl doctor --fix            # asks before removing orphan keyring entries\n  \
connctl doctor --fix --yes      # in scripts: no question"
    )]
    Doctor(DoctorArgs),
    /// Run the main job end to end on this machine, in a throwaway store
    Demo(DemoArgs),
    /// Probe connections on a schedule and serve the results as Prometheus metrics
    Monitor(MonitorArgs),
    /// Print a shell completion script
    #[command(after_help = "Examples (see README.md for every shell):\n  \
source <(connctl completions bash)\n  \
connctl completions zsh > ~/.zfunc/_connctl\n  \
connctl completions fish > ~/.config/fish/completions/connctl.fish")]
    Completions(CompletionsArgs),
    /// Show the change journal: who changed which record, when, with what command
    #[command(
        long_about = "Show the change journal, newest first: every committed change to the store, with \
its time (UTC), OS user, host, the command (secret values never appear), and each record it touched \
(added, edited with the fields, removed, activated, deactivated, rotated, restored). Activations \
name the integration, the environment and the connection that was active before.\n\n\
The journal is the file beside the store named after it with .journal appended (one JSON object \
per line, readable with jq).",
        after_help = "Examples:\n  connctl history\n  \
connctl history --integration incident-sync --since 7d\n  \
connctl history --connection incident-sync.prod --limit 5\n  \
connctl history --since 2026-12-01T08:00:00Z -o json | jq '.[] | select(.action == \"activated\")'"
    )]
    History(HistoryArgs),
}

// ----- value enums -------------------------------------------------------

/// An environment; input is case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvArg {
    Production,
    PreProduction,
    Test,
    Development,
    Sandbox,
}

impl From<EnvArg> for Environment {
    fn from(value: EnvArg) -> Self {
        match value {
            EnvArg::Production => Environment::Production,
            EnvArg::PreProduction => Environment::PreProduction,
            EnvArg::Test => Environment::Test,
            EnvArg::Development => Environment::Development,
            EnvArg::Sandbox => Environment::Sandbox,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    Basic,
    Oauth,
    None,
}

impl From<AuthArg> for Authentication {
    fn from(value: AuthArg) -> Self {
        match value {
            AuthArg::Basic => Authentication::Basic,
            AuthArg::Oauth => Authentication::Oauth,
            AuthArg::None => Authentication::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantArg {
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    Password,
    /// a person logs in once with `oauth-profile login` (PKCE S256)
    #[value(name = "authorization_code", alias = "authorization-code")]
    AuthorizationCode,
    /// a person approves on another device: `oauth-profile login` (RFC 8628)
    #[value(name = "device_code", alias = "device-code")]
    DeviceCode,
    /// a JWT signed with --signing-key is the grant (RFC 7523)
    #[value(name = "jwt_bearer", alias = "jwt-bearer")]
    JwtBearer,
}

impl From<GrantArg> for Grant {
    fn from(value: GrantArg) -> Self {
        match value {
            GrantArg::ClientCredentials => Grant::ClientCredentials,
            GrantArg::Password => Grant::Password,
            GrantArg::AuthorizationCode => Grant::AuthorizationCode,
            GrantArg::DeviceCode => Grant::DeviceCode,
            GrantArg::JwtBearer => Grant::JwtBearer,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuthArg {
    /// client id and secret in an HTTP Basic header
    Basic,
    /// client id and secret in the form body
    Body,
    /// a public client: client id only
    None,
    /// a JWT signed with --signing-key (RFC 7523)
    #[value(name = "private_key_jwt", alias = "private-key-jwt")]
    PrivateKeyJwt,
    /// the --protocol-profile's client certificate (RFC 8705)
    #[value(name = "tls_client_auth", alias = "tls-client-auth")]
    TlsClientAuth,
}

impl From<ClientAuthArg> for ClientAuth {
    fn from(value: ClientAuthArg) -> Self {
        match value {
            ClientAuthArg::Basic => ClientAuth::Basic,
            ClientAuthArg::Body => ClientAuth::Body,
            ClientAuthArg::None => ClientAuth::None,
            ClientAuthArg::PrivateKeyJwt => ClientAuth::PrivateKeyJwt,
            ClientAuthArg::TlsClientAuth => ClientAuth::TlsClientAuth,
        }
    }
}

// ----- secret inputs -----------------------------------------------------

/// How a password enters: never as a value on the command line. One source;
/// only `--password-stdin` goes with `--password-vault` (it writes the value to Vault).
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = true)]
pub struct PasswordArgs {
    /// Read the password from standard input and keep it in the OS keyring (with --password-vault: write it to Vault)
    #[arg(long)]
    pub password_stdin: bool,
    /// Take the password from this environment variable whenever it is needed
    #[arg(long, value_name = "VAR", conflicts_with_all = ["password_stdin", "password_file", "password_cmd", "password_vault"])]
    pub password_env: Option<String>,
    /// Read the password from this file whenever it is needed (trailing newline trimmed)
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["password_stdin", "password_cmd", "password_vault"])]
    pub password_file: Option<PathBuf>,
    /// Run this command whenever the password is needed; its stdout is the password
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["password_stdin", "password_vault"])]
    pub password_cmd: Option<String>,
    /// Read the password from Vault / OpenBao whenever it is needed: PATH#FIELD, e.g. secret/partner/orders#password (?version=N pins a KV v2 version)
    #[arg(long, value_name = "REF")]
    pub password_vault: Option<String>,
}

/// How an OAuth client secret enters: never as a value on the command line. One
/// source; only `--client-secret-stdin` goes with `--client-secret-vault` (a write to Vault).
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = true)]
pub struct ClientSecretArgs {
    /// Read the client secret from standard input and keep it in the OS keyring (with --client-secret-vault: write it to Vault)
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Take the client secret from this environment variable whenever it is needed
    #[arg(long, value_name = "VAR", conflicts_with_all = ["client_secret_stdin", "client_secret_file", "client_secret_cmd", "client_secret_vault"])]
    pub client_secret_env: Option<String>,
    /// Read the client secret from this file whenever it is needed
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["client_secret_stdin", "client_secret_cmd", "client_secret_vault"])]
    pub client_secret_file: Option<PathBuf>,
    /// Run this command whenever the client secret is needed; its stdout is the secret
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["client_secret_stdin", "client_secret_vault"])]
    pub client_secret_cmd: Option<String>,
    /// Read the client secret from Vault / OpenBao whenever it is needed: PATH#FIELD, e.g. secret/idp/connctl#client_secret
    #[arg(long, value_name = "REF")]
    pub client_secret_vault: Option<String>,
}

// ----- integration -------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Add an integration
    #[command(
        after_help = "Example:\n  connctl integration add incident-sync --application \"IT Service Management\""
    )]
    Add {
        /// Integration name
        name: String,
        /// The application it belongs to
        #[arg(long)]
        application: Option<String>,
        /// What the integration does
        #[arg(long)]
        description: Option<String>,
    },
    /// List integrations with their active connection
    List,
    /// Show one integration and its connections
    Show {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
    },
    /// Change an integration's application or description
    Edit {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
        /// The application it belongs to ("" clears it)
        #[arg(long)]
        application: Option<String>,
        /// What the integration does ("" clears it)
        #[arg(long)]
        description: Option<String>,
    },
    /// Activate an integration by activating one of its connections
    #[command(
        long_about = format!(
            "Activate an integration by activating one of its connections.\n\n\
The connection is --connection when given. Otherwise: {}",
            crate::model::CONNECTION_CHOICE
        ),
        after_help = "Examples:\n  connctl integration activate incident-sync --env test\n  \
connctl integration activate incident-sync --connection incident-sync.prod"
    )]
    Activate {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
        /// The connection to activate
        #[arg(long, conflicts_with = "env", add = complete::integration_connections())]
        connection: Option<String>,
        /// Activate the integration's connection for this environment
        #[arg(long, value_enum, ignore_case = true)]
        env: Option<EnvArg>,
    },
    /// Deactivate an integration's active connection
    Deactivate {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
    },
    /// Remove an integration (refused while connections belong to it)
    Remove {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
    },
    /// Undo the integration's last activation change, as the journal recorded it
    #[command(
        long_about = "Undo the integration's most recent activation change: re-activate the connection \
that was active before it, or deactivate the integration if none was. The rollback is journaled \
like any activation, so a second rollback returns to where the first one started.\n\n\
--to CONNECTION activates a connection the journal shows was active for the integration before. \
A production connection needs a confirmation on the terminal, or --yes.",
        after_help = "Examples:\n  connctl integration rollback incident-sync\n  \
connctl integration rollback incident-sync --to incident-sync.test\n  \
connctl history --integration incident-sync --limit 4"
    )]
    Rollback {
        /// Integration name
        #[arg(add = complete::integrations())]
        name: String,
        /// Activate this connection, which the journal shows active for the integration before
        #[arg(long, value_name = "CONNECTION", add = complete::integration_connections())]
        to: Option<String>,
    },
    /// Compare an integration's connections: each against the active one (or production)
    #[command(
        long_about = "Compare an integration's connections field by field.\n\n\
Without --env, every connection is compared with the integration's active connection (or its \
production connection when none is active). One --env compares that environment's connection with \
it; two --env compare those two. Exit 0 when nothing differs unexpectedly, 1 otherwise.",
        after_help = "Examples:\n  connctl integration diff incident-sync\n  \
connctl integration diff incident-sync --env test --env production\n  \
connctl integration diff incident-sync --ignore variables --live -o json"
    )]
    Diff(IntegrationDiffArgs),
}

#[derive(Debug, Args)]
pub struct IntegrationDiffArgs {
    /// Integration name
    #[arg(add = complete::integrations())]
    pub name: String,
    /// Compare this environment's connection (give it twice to compare two environments)
    #[arg(long, value_enum, ignore_case = true)]
    pub env: Vec<EnvArg>,
    #[command(flatten)]
    pub options: DiffOptions,
}

// ----- connection --------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection of an integration to one environment
    #[command(after_help = "Examples:\n  \
printf '%s' \"$PW\" | connctl connection add incident-sync.test \\\n      \
--integration incident-sync --env test --url https://test.example.com/api/incident \\\n      \
--auth basic --user svc.incident --password-stdin\n  \
connctl connection add incident-sync.prod --integration incident-sync --env production \\\n      \
--url https://api.example.com/api/incident --auth oauth --oauth-profile corp-idp \\\n      \
--mutual-auth --protocol-profile corp-mtls --mid-server dmz-mid --inbound-user remote.incident\n  \
printf '%s' \"$KEY\" | connctl connection add billing.test --integration billing --env test \\\n      \
--url https://billing.example.com/api --secret-var-stdin api_key \\\n      \
--secret-var tenant_token=env:TENANT_TOKEN\n  \
connctl connection send billing.test -H 'x-api-key: {{api_key}}' --path /invoices")]
    Add(Box<ConnectionAddArgs>),
    /// List connections
    List(ConnectionListArgs),
    /// Show one connection
    Show {
        /// Connection name
        #[arg(add = complete::connections())]
        name: String,
    },
    /// Change a connection; only the flags given change
    #[command(after_help = "Examples:\n  \
connctl connection edit billing.test --secret-var api_key=vault:secret/billing#api_key\n  \
printf '%s' \"$KEY\" | connctl connection edit billing.test --secret-var-stdin api_key\n  \
connctl connection edit billing.test --unset-secret-var api_key")]
    Edit(Box<ConnectionEditArgs>),
    /// Activate a connection, deactivating the integration's others
    Activate {
        /// Connection name
        #[arg(add = complete::connections())]
        name: String,
    },
    /// Deactivate a connection (its integration becomes inactive)
    Deactivate {
        /// Connection name
        #[arg(add = complete::connections())]
        name: String,
    },
    /// Remove a connection and its keyring entries
    Remove {
        /// Connection name
        #[arg(add = complete::connections())]
        name: String,
    },
    /// Copy a connection to another environment (inactive, without secrets)
    #[command(
        after_help = "Example:\n  connctl connection copy incident-sync.test incident-sync.dev --env development \\\n      \
--url https://dev.example.com/api/incident"
    )]
    Copy {
        /// The connection to copy
        #[arg(add = complete::connections())]
        source: String,
        /// Name of the new connection
        new: String,
        /// Environment of the new connection
        #[arg(long, value_enum, ignore_case = true)]
        env: EnvArg,
        /// Endpoint URL of the new connection (default: the source's)
        #[arg(long)]
        url: Option<String>,
        /// Allow a plain http URL for a production connection
        #[arg(long)]
        allow_http: bool,
    },
    /// Test a connection stage by stage: secrets, OAuth token, DNS, TCP, MID server, TLS, HTTP
    Test(ConnectionTestArgs),
    /// Send one message through a connection
    Send(ConnectionSendArgs),
    /// Replace the connection's password, after its staged test passed with the new one
    #[command(
        long_about = "Replace the connection's password (Basic, or the resource owner of an OAuth password \
grant) only after the connection's full staged test passed with the new value. If the test fails, \
nothing changes and the exit code is the test's. The replaced value is kept in the keyring \
(<field>.previous): --restore brings it back, tested the same way. The rotation is journaled \
(never the value).",
        after_help = "Examples:\n  printf '%s' \"$NEW_PW\" | connctl connection rotate incident-sync.prod --password-stdin\n  \
connctl connection rotate incident-sync.prod --password-env NEW_PW\n  \
connctl connection rotate incident-sync.prod --restore\n  \
connctl connection rotate incident-sync.test --password-stdin --no-test < pw.txt"
    )]
    Rotate(ConnectionRotateArgs),
    /// Compare two connections field by field: what differs, and whether it should
    #[command(
        long_about = "Compare two connections field by field.\n\n\
Each row says `same`, `differs (expected)` (where environments are meant to differ: host, names, \
user, variable values) or `differs` (authentication, mutual TLS, certificate issuer, MID server use, \
path, variable keys, secret source kinds, ...). Exit 0 when nothing differs unexpectedly, 1 otherwise.",
        after_help = "Examples:\n  connctl connection diff incident-sync.test incident-sync.prod\n  \
connctl connection diff incident-sync.test incident-sync.prod --ignore mid_server --ignore variables.table\n  \
connctl connection diff incident-sync.test incident-sync.prod --live -o json"
    )]
    Diff(ConnectionDiffArgs),
}

/// What `connection diff` and `integration diff` share.
#[derive(Debug, Clone, Args)]
pub struct DiffOptions {
    /// Accept a known difference: a field (endpoint.path, variables.table) or a group
    /// (oauth, certificate, endpoint, mid_server, variables, live); repeatable
    #[arg(long = "ignore", value_name = "FIELD")]
    pub ignore: Vec<String>,
    /// Also test both sides and compare what the servers showed (TLS, certificate, status)
    #[arg(long)]
    pub live: bool,
    /// With --live: seconds before a stage gives up (above 0, at most 86400)
    #[arg(
        long,
        default_value = "10",
        value_name = "SECONDS",
        requires = "live",
        value_parser = crate::limits::timeout_arg
    )]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ConnectionDiffArgs {
    /// The first connection (a)
    #[arg(add = complete::connections())]
    pub a: String,
    /// The second connection (b)
    #[arg(add = complete::connections())]
    pub b: String,
    #[command(flatten)]
    pub options: DiffOptions,
}

#[derive(Debug, Args)]
pub struct ConnectionAddArgs {
    /// Connection name (e.g. incident-sync.prod)
    pub name: String,
    /// The integration it belongs to
    #[arg(long, add = complete::integrations())]
    pub integration: String,
    /// The environment it reaches
    #[arg(long, value_enum, ignore_case = true)]
    pub env: EnvArg,
    /// Endpoint URL (absolute http or https)
    #[arg(long)]
    pub url: String,
    /// Allow a plain http URL for a production connection
    #[arg(long)]
    pub allow_http: bool,
    /// Authentication [default: oauth with --oauth-profile, basic with --user, else none]
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// User for basic authentication (and the resource owner of a password grant)
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// OAuth profile for --auth oauth
    #[arg(long, add = complete::oauth_profiles())]
    pub oauth_profile: Option<String>,
    /// Present a client certificate (needs --protocol-profile)
    #[arg(long)]
    pub mutual_auth: bool,
    /// Protocol profile with the client certificate for mutual TLS
    #[arg(long, add = complete::protocol_profiles())]
    pub protocol_profile: Option<String>,
    /// MID server (forward proxy) to reach the endpoint through
    #[arg(long, add = complete::mid_servers())]
    pub mid_server: Option<String>,
    /// Inbound user the remote system authenticates as
    #[arg(long, add = complete::inbound_users())]
    pub inbound_user: Option<String>,
    /// Extra trust roots (PEM) for a private CA
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub ca_bundle: Option<PathBuf>,
    /// A variable KEY=VALUE (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// A secret variable KEY=env:VAR, file:PATH, cmd:COMMAND or vault:PATH#FIELD: only the source is stored; {{KEY}} in a header value is filled in the secrets stage (repeatable)
    #[arg(long = "secret-var", value_name = "KEY=SOURCE")]
    pub secret_vars: Vec<String>,
    /// A secret variable KEY whose value is read from stdin into the keyring
    #[arg(
        long = "secret-var-stdin",
        value_name = "KEY",
        conflicts_with = "password_stdin"
    )]
    pub secret_var_stdin: Option<String>,
    /// Make it the integration's active connection
    #[arg(long)]
    pub activate: bool,
}

#[derive(Debug, Args)]
pub struct ConnectionListArgs {
    /// Only connections of this integration
    #[arg(long, add = complete::integrations())]
    pub integration: Option<String>,
    /// Only connections to this environment
    #[arg(long, value_enum, ignore_case = true)]
    pub env: Option<EnvArg>,
    /// Only active connections
    #[arg(long)]
    pub active: bool,
}

#[derive(Debug, Args)]
pub struct ConnectionEditArgs {
    /// Connection name
    #[arg(add = complete::connections())]
    pub name: String,
    /// Move the connection to another integration (it is deactivated)
    #[arg(long, add = complete::integrations())]
    pub integration: Option<String>,
    /// The environment it reaches
    #[arg(long, value_enum, ignore_case = true)]
    pub env: Option<EnvArg>,
    /// Endpoint URL (absolute http or https)
    #[arg(long)]
    pub url: Option<String>,
    /// Allow a plain http URL for a production connection
    #[arg(long, overrides_with = "no_allow_http")]
    pub allow_http: bool,
    /// Stop allowing plain http for production
    #[arg(long)]
    pub no_allow_http: bool,
    /// Authentication (switching away from oauth drops the OAuth profile)
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// User for basic authentication ("" clears it)
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// OAuth profile for --auth oauth
    #[arg(long, add = complete::oauth_profiles())]
    pub oauth_profile: Option<String>,
    /// Present a client certificate (needs a protocol profile)
    #[arg(long, overrides_with = "no_mutual_auth")]
    pub mutual_auth: bool,
    /// Stop presenting a client certificate (drops the protocol profile)
    #[arg(long)]
    pub no_mutual_auth: bool,
    /// Protocol profile with the client certificate for mutual TLS
    #[arg(long, add = complete::protocol_profiles())]
    pub protocol_profile: Option<String>,
    /// MID server to reach the endpoint through
    #[arg(long, conflicts_with = "no_mid_server", add = complete::mid_servers())]
    pub mid_server: Option<String>,
    /// Reach the endpoint directly
    #[arg(long)]
    pub no_mid_server: bool,
    /// Inbound user the remote system authenticates as
    #[arg(long, conflicts_with = "no_inbound_user", add = complete::inbound_users())]
    pub inbound_user: Option<String>,
    /// Remove the inbound user
    #[arg(long)]
    pub no_inbound_user: bool,
    /// Extra trust roots (PEM) for a private CA
    #[arg(long, value_name = "PEM", conflicts_with = "no_ca_bundle", value_hint = clap::ValueHint::FilePath)]
    pub ca_bundle: Option<PathBuf>,
    /// Trust only the OS roots again
    #[arg(long)]
    pub no_ca_bundle: bool,
    /// Set a variable KEY=VALUE (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Remove a variable (repeatable)
    #[arg(long = "unset-var", value_name = "KEY")]
    pub unset_vars: Vec<String>,
    /// A secret variable KEY=env:VAR, file:PATH, cmd:COMMAND or vault:PATH#FIELD: only the source is stored; {{KEY}} in a header value is filled in the secrets stage (repeatable)
    #[arg(long = "secret-var", value_name = "KEY=SOURCE")]
    pub secret_vars: Vec<String>,
    /// A secret variable KEY whose value is read from stdin into the keyring
    #[arg(
        long = "secret-var-stdin",
        value_name = "KEY",
        conflicts_with = "password_stdin"
    )]
    pub secret_var_stdin: Option<String>,
    /// Remove a secret variable and its keyring entry (repeatable)
    #[arg(long = "unset-secret-var", value_name = "KEY")]
    pub unset_secret_vars: Vec<String>,
}

/// Which connection(s) a test or send is about.
#[derive(Debug, Clone, Args)]
pub struct ConnectionTarget {
    /// Connection name
    #[arg(add = complete::connections())]
    pub name: Option<String>,
    /// Use this integration's active connection (with --env: its connection in that environment)
    #[arg(
        long,
        conflicts_with = "name",
        add = complete::integrations(),
        long_help = format!(
            "Use this integration's active connection; with --env, its connection in that environment. {}",
            crate::model::CONNECTION_CHOICE
        )
    )]
    pub integration: Option<String>,
    /// With --integration: the integration's connection for this environment
    // clap skips `requires` when an argument that conflicts with the required one
    // is present (NAME conflicts with --integration): say the conflict outright,
    // or --env would be silently ignored.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        requires = "integration",
        conflicts_with = "name"
    )]
    pub env: Option<EnvArg>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  connctl connection test incident-sync.prod\n  \
connctl connection test --integration incident-sync --env test -o json\n  \
connctl connection test --all --active --jobs 32\n  \
connctl connection test incident-sync.prod --method POST --expect 405\n  \
connctl connection test --all --report junit:connctl.xml --report json:connctl.json --warn-days 14\n\n\
Exit codes: 0 OK; 9 RENEW: the test passed but a certificate expires within --warn-days;\n\
1, 3-8 a failure (see `connctl --help`)."
)]
pub struct ConnectionTestArgs {
    #[command(flatten)]
    pub target: ConnectionTarget,
    /// Test every connection, concurrently
    #[arg(long, conflicts_with_all = ["name", "integration", "env"])]
    pub all: bool,
    /// With --all: only active connections
    #[arg(long, requires = "all", conflicts_with_all = ["name", "integration"])]
    pub active: bool,
    /// With --all: how many connections to test at once
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// HTTP method of the test request
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Path joined to the endpoint URL
    #[arg(long)]
    pub path: Option<String>,
    /// Accept this HTTP status as success (repeatable); default: any 2xx or 3xx
    #[arg(long = "expect", value_name = "STATUS", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub expect: Vec<u16>,
    /// Seconds before a stage gives up (above 0, at most 86400)
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::limits::timeout_arg)]
    pub timeout: std::time::Duration,
    /// Skip server certificate verification (test only; says what it skips)
    #[arg(long)]
    pub insecure: bool,
    /// Also write a report: junit:FILE (JUnit XML for CI) or json:FILE (the -o json array); repeatable
    #[arg(long = "report", value_name = "KIND:FILE", value_parser = crate::report::parse_target)]
    pub reports: Vec<crate::report::ReportTarget>,
    /// A passing test whose server or client certificate expires within N days exits 9 (RENEW)
    #[arg(long, value_name = "N", default_value_t = crate::outbound::expiry::DEFAULT_WARN_DAYS)]
    pub warn_days: u32,
    /// Use VALUE for {{KEY}} in --path in this test only (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  connctl connection send incident-sync.test -X POST -d @event.json\n  \
connctl connection send --integration incident-sync -X POST -d @- < event.json\n  \
connctl connection send incident-sync.prod --path /123 -H 'Accept: application/json' --yes\n\n\
Variables: {{NAME}} in --path, -H values and the body is the connection's variable NAME\n\
(`connection edit C --var NAME=VALUE`), or --var NAME=VALUE for this send; built-ins\n\
{{connection}}, {{integration}}, {{environment}}; {{{{ writes a literal {{. The same message\n\
file then works against every environment:\n  \
connctl connection send --integration incident-sync --path '/{{table}}' -d @event.json\n  \
connctl connection send incident-sync.test -d @event.json --var table=problem\n  \
connctl connection send incident-sync.test -d @template.json --raw-body"
)]
pub struct ConnectionSendArgs {
    #[command(flatten)]
    pub target: ConnectionTarget,
    /// HTTP method [default: POST with a body, else GET]
    #[arg(short = 'X', long = "method", value_name = "METHOD")]
    pub method: Option<String>,
    /// Path joined to the endpoint URL
    #[arg(long)]
    pub path: Option<String>,
    /// A request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The body: TEXT, @FILE, or @- for standard input
    #[arg(short = 'd', long = "data", value_name = "TEXT|@FILE|@-", add = complete::at_file())]
    pub data: Option<String>,
    /// Content-Type of the body [default: application/json]
    #[arg(long)]
    pub content_type: Option<String>,
    /// Seconds before the send gives up (above 0, at most 86400)
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = crate::limits::timeout_arg)]
    pub timeout: std::time::Duration,
    /// Retry connection failures and 502/503/504 this many times, with backoff
    #[arg(long, default_value_t = 0)]
    pub retry: u32,
    /// Print the response status line and headers before the body
    #[arg(short = 'i', long)]
    pub include: bool,
    /// Use VALUE for {{KEY}} in this send only, over the connection's variable (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Send the body exactly as given: no {{variables}} filled in it
    #[arg(long)]
    pub raw_body: bool,
}

// ----- oauth-profile -----------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum OauthProfileCommand {
    /// Add an OAuth 2.0 profile
    #[command(
        after_help = "Example:\n  printf '%s' \"$SECRET\" | connctl oauth-profile add corp-idp \\\n      \
--token-url https://idp.example.com/oauth/token --client-id connctl --scope incident.write \\\n      \
--client-secret-stdin\n\n\
Authorization code with PKCE (a person logs in once, refresh tokens after):\n  \
connctl oauth-profile add m365 --issuer https://login.example.com/tenant/v2.0 --client-id APP \\\n      \
--grant authorization_code --client-auth none --redirect-uri http://127.0.0.1:8765/callback \\\n      \
--scope offline_access --scope api://crm/.default\n  \
connctl oauth-profile login m365\n\n\
Device flow on a headless host:\n  \
connctl oauth-profile add idp-dev --issuer https://idp.example.com --client-id cli --grant device_code \\\n      \
--client-auth none --scope offline_access\n\n\
JWT bearer grant (RFC 7523), key file:\n  \
connctl oauth-profile add sn-jwt --token-url https://inst.example.com/oauth_token.do --client-id ID \\\n      \
--grant jwt_bearer --client-auth body --client-secret-env SN_SECRET --signing-key /etc/connctl/jwt.pem \\\n      \
--key-id sn-key-1 --subject integration.user\n\n\
private_key_jwt / tls_client_auth client authentication:\n  \
connctl oauth-profile add svc --issuer https://idp.example.com --client-id svc --client-auth private_key_jwt \\\n      \
--signing-key-env SVC_KEY_PEM\n  \
connctl oauth-profile add svc-mtls --issuer https://idp.example.com --client-id svc --client-auth tls_client_auth \\\n      \
--protocol-profile corp-mtls"
    )]
    Add(OauthProfileArgs),
    /// List OAuth profiles
    List,
    /// Show one OAuth profile
    Show {
        /// Profile name
        #[arg(add = complete::oauth_profiles())]
        name: String,
    },
    /// Change an OAuth profile; only the flags given change
    Edit(OauthProfileEditArgs),
    /// Remove an OAuth profile (refused while connections use it)
    Remove {
        /// Profile name
        #[arg(add = complete::oauth_profiles())]
        name: String,
    },
    /// Fetch (or reuse the cached) access token and show its expiry and scopes
    Token(OauthTokenArgs),
    /// Replace the client secret, after every active connection using it passed its test with the new one
    #[command(
        long_about = "Replace the profile's client secret only after the staged test of every active \
connection that uses the profile (or of --connection) passed with the new value, with a fresh token \
fetched for the test (the token cache is neither read nor written). If a test fails, nothing changes \
and the exit code is the test's. The replaced value is kept in the keyring (client_secret.previous): \
--restore brings it back, tested the same way.",
        after_help = "Examples:\n  printf '%s' \"$NEW_SECRET\" | connctl oauth-profile rotate corp-idp --client-secret-stdin\n  \
connctl oauth-profile rotate corp-idp --client-secret-cmd 'vault kv get -field=secret kv/idp' --connection incident-sync.test\n  \
connctl oauth-profile rotate corp-idp --restore"
    )]
    Rotate(OauthProfileRotateArgs),
    /// Log in once for the authorization_code or device_code grant; keeps the refresh token
    #[command(
        after_help = "Examples:\n  connctl oauth-profile login m365            # opens the browser, waits for the redirect\n  \
BROWSER= connctl oauth-profile login m365    # prints the URL only\n  \
connctl oauth-profile login headless-idp    # device_code: prints the code to enter elsewhere"
    )]
    Login(OauthLoginArgs),
    /// Revoke the refresh token (where the server can) and forget the cached tokens
    #[command(after_help = "Example:\n  connctl oauth-profile logout m365")]
    Logout {
        /// Profile name
        #[arg(add = complete::oauth_profiles())]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct OauthLoginArgs {
    /// Profile name
    #[arg(add = complete::oauth_profiles())]
    pub name: String,
    /// Seconds to wait for the person to finish logging in
    #[arg(long, default_value = "300", value_name = "SECONDS", value_parser = crate::limits::timeout_arg)]
    pub timeout: std::time::Duration,
}

/// The private key that signs JWT assertions (jwt_bearer, private_key_jwt).
#[derive(Debug, Args, Default)]
pub struct SigningKeyArgs {
    /// A PEM private key file (RSA: RS256, EC P-256: ES256), read when needed
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub signing_key: Option<PathBuf>,
    /// Read the PEM private key from standard input and keep it in the OS keyring
    #[arg(long)]
    pub signing_key_stdin: bool,
    /// Take the PEM private key from this environment variable whenever it is needed
    #[arg(long, value_name = "VAR")]
    pub signing_key_env: Option<String>,
    /// Read the PEM private key from this file whenever it is needed (a secret source)
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub signing_key_file: Option<PathBuf>,
    /// Run this command whenever the key is needed; its stdout is the PEM key
    #[arg(long, value_name = "COMMAND")]
    pub signing_key_cmd: Option<String>,
}

/// What the newer grants and client authentications need (add and edit).
#[derive(Debug, Args)]
pub struct OauthExtraArgs {
    /// Fill the token, authorization, device and revocation endpoints from this issuer's discovery metadata
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Authorization endpoint (authorization_code)
    #[arg(long, value_name = "URL")]
    pub authorization_url: Option<String>,
    /// Device authorization endpoint (device_code)
    #[arg(long, value_name = "URL")]
    pub device_authorization_url: Option<String>,
    /// Revocation endpoint (RFC 7009), used by logout
    #[arg(long, value_name = "URL")]
    pub revocation_url: Option<String>,
    /// The registered loopback redirect URI, e.g. http://127.0.0.1:8765/callback [default: an ephemeral port]
    #[arg(long, value_name = "URI")]
    pub redirect_uri: Option<String>,
    /// The `kid` of the signing key, sent in the JWT header
    #[arg(long, value_name = "KID")]
    pub key_id: Option<String>,
    /// The `sub` of a jwt_bearer assertion [default: the client id]
    #[arg(long, value_name = "SUB")]
    pub subject: Option<String>,
    /// The `aud` of signed assertions [default: the token URL]
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
    /// Protocol profile whose client certificate tls_client_auth presents
    #[arg(long, add = complete::protocol_profiles())]
    pub protocol_profile: Option<String>,
    #[command(flatten)]
    pub key: SigningKeyArgs,
}

#[derive(Debug, Args)]
pub struct OauthProfileArgs {
    /// Profile name
    pub name: String,
    /// Token endpoint URL [default: from --issuer's metadata]
    #[arg(long, required_unless_present = "issuer")]
    pub token_url: Option<String>,
    /// Client id
    #[arg(long)]
    pub client_id: String,
    /// Grant type
    #[arg(long, value_enum, default_value = "client_credentials")]
    pub grant: GrantArg,
    /// How the client authenticates to the token endpoint
    #[arg(long, value_enum, default_value = "basic")]
    pub client_auth: ClientAuthArg,
    /// A scope to request (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub secret: ClientSecretArgs,
    #[command(flatten)]
    pub extra: Box<OauthExtraArgs>,
}

#[derive(Debug, Args)]
pub struct OauthProfileEditArgs {
    /// Profile name
    #[arg(add = complete::oauth_profiles())]
    pub name: String,
    /// Token endpoint URL
    #[arg(long)]
    pub token_url: Option<String>,
    /// Client id
    #[arg(long)]
    pub client_id: Option<String>,
    /// Grant type
    #[arg(long, value_enum)]
    pub grant: Option<GrantArg>,
    /// How the client authenticates to the token endpoint
    #[arg(long, value_enum)]
    pub client_auth: Option<ClientAuthArg>,
    /// Replace the scopes with these (repeatable)
    #[arg(long = "scope", value_name = "SCOPE", conflicts_with = "no_scopes")]
    pub scopes: Vec<String>,
    /// Request no scopes
    #[arg(long)]
    pub no_scopes: bool,
    #[command(flatten)]
    pub secret: ClientSecretArgs,
    #[command(flatten)]
    pub extra: Box<OauthExtraArgs>,
}

#[derive(Debug, Args)]
pub struct OauthTokenArgs {
    /// Profile name
    #[arg(add = complete::oauth_profiles())]
    pub name: String,
    /// Fetch as this connection does (its MID server, CA bundle, and user for the password grant)
    #[arg(long, add = complete::connections())]
    pub connection: Option<String>,
    /// Print the access token itself on stdout
    #[arg(long)]
    pub print: bool,
}

// ----- protocol-profile --------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum ProtocolProfileCommand {
    /// Add a protocol profile (the files are checked now and read when used)
    #[command(
        after_help = "Example:\n  connctl protocol-profile add corp-mtls --client-cert /etc/connctl/client.pem \\\n      \
--client-key /etc/connctl/client.key --ca-bundle /etc/connctl/partner-ca.pem"
    )]
    Add(ProtocolProfileArgs),
    /// List protocol profiles
    List,
    /// Show one protocol profile, with the client certificate's subject and expiry
    Show {
        /// Profile name
        #[arg(add = complete::protocol_profiles())]
        name: String,
    },
    /// Change a protocol profile; only the flags given change
    Edit(ProtocolProfileEditArgs),
    /// Remove a protocol profile (refused while connections use it)
    Remove {
        /// Profile name
        #[arg(add = complete::protocol_profiles())]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ProtocolProfileArgs {
    /// Profile name
    pub name: String,
    /// Client certificate chain (PEM)
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub client_cert: PathBuf,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub client_key: PathBuf,
    /// Extra trust roots (PEM) for the server's CA
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProtocolProfileEditArgs {
    /// Profile name
    #[arg(add = complete::protocol_profiles())]
    pub name: String,
    /// Client certificate chain (PEM)
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM)
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    pub client_key: Option<PathBuf>,
    /// Extra trust roots (PEM)
    #[arg(long, value_name = "PEM", conflicts_with = "no_ca_bundle", value_hint = clap::ValueHint::FilePath)]
    pub ca_bundle: Option<PathBuf>,
    /// Drop the CA bundle
    #[arg(long)]
    pub no_ca_bundle: bool,
}

// ----- mid-server --------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum MidServerCommand {
    /// Add a MID server
    #[command(
        after_help = "Example:\n  connctl mid-server add dmz-mid --url http://mid.internal:3128 \\\n      \
--user mid --password-env MID_PASSWORD"
    )]
    Add(MidServerArgs),
    /// List MID servers
    List,
    /// Show one MID server
    Show {
        /// MID server name
        #[arg(add = complete::mid_servers())]
        name: String,
    },
    /// Change a MID server; only the flags given change
    Edit(MidServerEditArgs),
    /// Remove a MID server (refused while connections use it)
    Remove {
        /// MID server name
        #[arg(add = complete::mid_servers())]
        name: String,
    },
    /// Replace the proxy password, after every active connection through it passed its test with the new one
    #[command(
        long_about = "Replace the MID server's proxy password only after the staged test of every active \
connection that goes through it (or of --connection) passed with the new value. If a test fails, \
nothing changes and the exit code is the test's. The replaced value is kept in the keyring \
(password.previous): --restore brings it back, tested the same way.",
        after_help = "Examples:\n  printf '%s' \"$NEW_PW\" | connctl mid-server rotate dmz-mid --password-stdin\n  \
connctl mid-server rotate dmz-mid --password-env NEW_MID_PW --connection incident-sync.prod\n  \
connctl mid-server rotate dmz-mid --restore"
    )]
    Rotate(MidServerRotateArgs),
}

#[derive(Debug, Args)]
pub struct MidServerArgs {
    /// MID server name
    pub name: String,
    /// Proxy URL: http://host:port
    #[arg(long)]
    pub url: String,
    /// Proxy user (needs a password source)
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, Args)]
pub struct MidServerEditArgs {
    /// MID server name
    #[arg(add = complete::mid_servers())]
    pub name: String,
    /// Proxy URL: http://host:port
    #[arg(long)]
    pub url: Option<String>,
    /// Proxy user
    #[arg(long, conflicts_with = "no_user")]
    pub user: Option<String>,
    /// No proxy authentication (drops user and password)
    #[arg(long)]
    pub no_user: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

// ----- inbound-user ------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum InboundUserCommand {
    /// Add an inbound user (prompts for the password on a terminal)
    #[command(
        after_help = "Example:\n  printf '%s' \"$PW\" | connctl inbound-user add remote.incident --password-stdin"
    )]
    Add {
        /// Inbound user name
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List inbound users and the connections that admit them
    List,
    /// Show one inbound user
    Show {
        /// Inbound user name
        #[arg(add = complete::inbound_users())]
        name: String,
    },
    /// Remove an inbound user (refused while connections name it)
    Remove {
        /// Inbound user name
        #[arg(add = complete::inbound_users())]
        name: String,
    },
    /// Set an inbound user's password (or its source)
    SetPassword {
        /// Inbound user name
        #[arg(add = complete::inbound_users())]
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

// ----- inbound -----------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// Which integration and connection admit an inbound user, or why none does
    #[command(after_help = "Example:\n  \
printf '%s' \"$PW\" | connctl inbound check remote.incident --password-stdin")]
    Check(InboundCheckArgs),
    /// Receive messages from remote systems over HTTP(S)
    #[command(after_help = "Example:\n  \
connctl inbound serve --listen 0.0.0.0:8443 --tls-cert server.pem --tls-key server.key \\\n      \
--client-ca partner-ca.pem --spool /var/spool/connctl")]
    Serve(InboundServeArgs),
}

#[derive(Debug, Args)]
pub struct InboundCheckArgs {
    /// Inbound user name
    #[arg(add = complete::inbound_users())]
    pub user: String,
    /// Also check a password, read from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct InboundServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: String,
    /// Server certificate chain (PEM); serves HTTPS
    #[arg(long, value_name = "PEM", requires = "tls_key", value_hint = clap::ValueHint::FilePath)]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM)
    #[arg(long, value_name = "PEM", requires = "tls_cert", value_hint = clap::ValueHint::FilePath)]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (PEM)
    #[arg(long, value_name = "PEM", requires = "tls_cert", value_hint = clap::ValueHint::FilePath)]
    pub client_ca: Option<PathBuf>,
    /// Append accepted messages to DIR/messages.jsonl (default: stdout)
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub spool: Option<PathBuf>,
    /// Largest accepted body (e.g. 10MiB, 512KiB, 1000)
    #[arg(long, default_value = "10MiB", value_name = "SIZE")]
    pub max_body: String,
    /// Seconds a client may take to send a request (above 0, at most 3600)
    #[arg(long, default_value = "30", value_name = "SECONDS", value_parser = crate::limits::request_timeout_arg)]
    pub request_timeout: std::time::Duration,
}

// ----- the rest ----------------------------------------------------------

#[derive(Debug, Args)]
pub struct ExportArgs {}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `connctl export` (TOML), or - for standard input
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    /// Replace records that exist with a different content (default: refuse)
    #[arg(long)]
    pub replace: bool,
    /// Say what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Remove keyring entries of this store that no record names (orphans a
    /// crash or a failed delete left); asks first unless --yes
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

// ----- rotate ---------------------------------------------------------

/// What every `rotate` takes besides the new value.
#[derive(Debug, Args)]
pub struct RotateOptions {
    /// Bring back the value the last rotation replaced (tested first, like a new one)
    #[arg(long)]
    pub restore: bool,
    /// Commit the new value without testing it (a warning says what that risks)
    #[arg(long)]
    pub no_test: bool,
    /// Seconds before a stage of the test gives up
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::limits::timeout_arg)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ConnectionRotateArgs {
    /// Connection name
    #[arg(add = complete::connections())]
    pub name: String,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub options: RotateOptions,
}

#[derive(Debug, Args)]
pub struct OauthProfileRotateArgs {
    /// Profile name
    #[arg(add = complete::oauth_profiles())]
    pub name: String,
    #[command(flatten)]
    pub client_secret: ClientSecretArgs,
    /// Test through this connection only (default: every active connection using the profile)
    #[arg(long, add = complete::connections())]
    pub connection: Option<String>,
    #[command(flatten)]
    pub options: RotateOptions,
}

#[derive(Debug, Args)]
pub struct MidServerRotateArgs {
    /// MID server name
    #[arg(add = complete::mid_servers())]
    pub name: String,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Test through this connection only (default: every active connection through the MID server)
    #[arg(long, add = complete::connections())]
    pub connection: Option<String>,
    #[command(flatten)]
    pub options: RotateOptions,
}

// ----- history --------------------------------------------------------

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only changes of this integration and its connections
    #[arg(long, add = complete::integrations())]
    pub integration: Option<String>,
    /// Only changes of this connection (and activations that replaced it)
    #[arg(long, add = complete::connections())]
    pub connection: Option<String>,
    /// Only changes since this long ago (90s, 30m, 12h, 7d, 2w) or this time (RFC 3339)
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// At most this many rows (one per record touched), the newest
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}

#[derive(Debug, Args)]
#[command(
    long_about = "Probe the chosen connections every --interval with the staged test of \
`connection test` and serve the last results on /metrics (Prometheus text format) and /healthz. \
Scrapes never start a probe; OAuth tokens come from the token cache until shortly before they \
expire. The store is reloaded when its file changes; while it is invalid the last valid version \
keeps being probed and connctl_store_reload_errors_total counts the failed loads. \
SIGTERM or Ctrl-C stops it (exit 0). Metric names and labels: docs/design.md and \
examples/prometheus/.",
    after_help = "Examples:\n  connctl monitor --listen 127.0.0.1:9464\n  \
connctl monitor --listen 0.0.0.0:9464 --interval 15s --active --jobs 32\n  \
connctl monitor --integration incident-sync --listen 127.0.0.1:9464\n  \
connctl monitor --once --textfile /var/lib/node_exporter/textfile/connctl.prom"
)]
pub struct MonitorArgs {
    /// Address to serve /metrics and /healthz on (HOST:PORT)
    #[arg(long, value_name = "ADDR", required_unless_present = "once")]
    pub listen: Option<String>,
    /// Time between the starts of two probe cycles (15s, 1m, 1m30s)
    #[arg(long, default_value = "60s", value_parser = crate::monitor::parse_interval)]
    pub interval: std::time::Duration,
    /// Only active connections
    #[arg(long)]
    pub active: bool,
    /// Only the connections of this integration
    #[arg(long, add = complete::integrations())]
    pub integration: Option<String>,
    /// How many connections to probe at once
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Seconds before a stage of a probe gives up (above 0, at most 86400)
    #[arg(long, default_value = "10", value_name = "SECONDS", value_parser = crate::limits::timeout_arg)]
    pub timeout: std::time::Duration,
    /// Probe once, write the metrics (to --textfile, else stdout) and exit
    #[arg(long, conflicts_with = "listen")]
    pub once: bool,
    /// With --once: write the metrics atomically to this file (node_exporter textfile collector)
    #[arg(long, value_name = "PATH", conflicts_with = "listen", value_hint = clap::ValueHint::FilePath)]
    pub textfile: Option<PathBuf>,
}
