//! `--push` flags of `rprof record`, as clap parses them, and their
//! resolution into a [`PushConfig`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::push::{parse_labels, read_auth, PushConfig, PushFormat};

/// `--push-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushFormatArg {
    /// Grafana Pyroscope: HTTP /ingest, format=pprof.
    Pyroscope,
    /// Grafana Pyroscope's push API: push.v1.PusherService/Push (Connect),
    /// as Grafana Alloy sends.
    PyroscopePush,
    /// Parca: ProfileStoreService/WriteRaw over gRPC-Web.
    Parca,
}

impl From<PushFormatArg> for PushFormat {
    fn from(arg: PushFormatArg) -> PushFormat {
        match arg {
            PushFormatArg::Pyroscope => PushFormat::Pyroscope,
            PushFormatArg::PyroscopePush => PushFormat::PyroscopePush,
            PushFormatArg::Parca => PushFormat::Parca,
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Pushing profiles")]
pub struct PushArgs {
    /// Send each interval's profile (needs --rotate) to this server: a
    /// Pyroscope base URL (http://pyroscope:4040) or a Parca one
    /// (http://parca:7070). Profiles wait in the spool while the server is
    /// unreachable. Without --keep, the 10 newest interval files are kept.
    #[arg(long = "push", value_name = "URL")]
    pub push: Option<String>,

    /// The server's protocol [default: pyroscope].
    #[arg(long = "push-format", value_name = "FORMAT")]
    pub push_format: Option<PushFormatArg>,

    /// Series labels K=V, comma-separated; repeatable. service_name defaults
    /// to the recorded command's name.
    #[arg(long = "label", value_name = "K=V[,K=V]")]
    pub labels: Vec<String>,

    /// Where profiles wait to be sent [default: /var/spool/rprof as root,
    /// else $XDG_STATE_HOME/rprof/spool or ~/.local/state/rprof/spool].
    #[arg(long = "spool-dir", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,

    /// The spool's size cap (K, M, G: KiB, MiB, GiB); past it the oldest
    /// profiles are dropped [default: 256M].
    #[arg(long = "spool-max", value_name = "SIZE", value_parser = parse_size)]
    pub spool_max: Option<u64>,

    /// Read a bearer token from FILE (else $RPROF_PUSH_TOKEN).
    #[arg(long = "push-token-file", value_name = "FILE")]
    pub push_token_file: Option<PathBuf>,

    /// Read `user:password` for basic auth from FILE (else
    /// $RPROF_PUSH_USER and $RPROF_PUSH_PASSWORD).
    #[arg(
        long = "push-basic-auth-file",
        value_name = "FILE",
        conflicts_with = "push_token_file"
    )]
    pub push_basic_auth_file: Option<PathBuf>,

    /// Give up one request after SECS seconds (it is retried) [default: 10].
    #[arg(long = "push-timeout", value_name = "SECS")]
    pub push_timeout: Option<u64>,

    /// Trust the CA certificates in FILE (PEM) besides the built-in
    /// (Mozilla's) roots: for an https server under a private CA.
    #[arg(long = "push-ca-file", value_name = "FILE")]
    pub push_ca_file: Option<PathBuf>,
}

/// The default spool size cap.
pub const DEFAULT_SPOOL_MAX: u64 = 256 << 20;
/// The default request timeout.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(10);

impl PushArgs {
    /// The push config, `None` without `--push`. `default_service_name`
    /// is used when no `--label` sets `service_name`.
    pub fn config(&self, default_service_name: &str) -> anyhow::Result<Option<PushConfig>> {
        let Some(url) = &self.push else {
            if let Some(flag) = self.orphan_flag() {
                bail!("{flag} needs --push URL");
            }
            return Ok(None);
        };
        let mut labels: Vec<(String, String)> = Vec::new();
        for text in &self.labels {
            for (name, value) in parse_labels(text)? {
                if labels.iter().any(|(n, _)| *n == name) {
                    bail!("bad --label: label `{name}` is given twice");
                }
                labels.push((name, value));
            }
        }
        if !labels.iter().any(|(n, _)| n == "service_name") {
            labels.insert(0, ("service_name".into(), default_service_name.into()));
        }
        let spool_dir = match &self.spool_dir {
            Some(dir) => dir.clone(),
            None => default_spool_dir(nix::unistd::geteuid().is_root(), |name| {
                std::env::var_os(name).map(PathBuf::from)
            })?,
        };
        let timeout = match self.push_timeout {
            Some(0) => bail!("--push-timeout must be at least 1 second"),
            Some(secs) => Duration::from_secs(secs),
            None => DEFAULT_PUSH_TIMEOUT,
        };
        let auth = read_auth(
            self.push_token_file.as_deref(),
            self.push_basic_auth_file.as_deref(),
        )?;
        let format = self
            .push_format
            .map_or(PushFormat::Pyroscope, PushFormat::from);
        let mut config = PushConfig::new(url.clone(), format, spool_dir);
        config.labels = labels;
        config.spool_max_bytes = self.spool_max.unwrap_or(DEFAULT_SPOOL_MAX);
        config.auth = auth;
        config.timeout = timeout;
        config.ca_file = self.push_ca_file.clone();
        Ok(Some(config))
    }

    /// A push flag given without `--push`.
    fn orphan_flag(&self) -> Option<&'static str> {
        [
            (self.push_format.is_some(), "--push-format"),
            (!self.labels.is_empty(), "--label"),
            (self.spool_dir.is_some(), "--spool-dir"),
            (self.spool_max.is_some(), "--spool-max"),
            (self.push_token_file.is_some(), "--push-token-file"),
            (
                self.push_basic_auth_file.is_some(),
                "--push-basic-auth-file",
            ),
            (self.push_timeout.is_some(), "--push-timeout"),
            (self.push_ca_file.is_some(), "--push-ca-file"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// /var/spool/rprof for root; else $XDG_STATE_HOME/rprof/spool (an
/// absolute one, as the XDG spec wants), else ~/.local/state/rprof/spool.
pub fn default_spool_dir(
    root: bool,
    env: impl Fn(&str) -> Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if root {
        return Ok(PathBuf::from("/var/spool/rprof"));
    }
    if let Some(state) = env("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Ok(state.join("rprof/spool"));
    }
    let home = env("HOME")
        .filter(|p| p.is_absolute())
        .context("no $HOME to put the spool in: give --spool-dir DIR")?;
    Ok(home.join(".local/state/rprof/spool"))
}

/// `256M`, `1G`, `512K`, `1000` (bytes); K/M/G/T are powers of 1024, and
/// may be written `Mi`, `MiB` or `MB` too.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: give a number and K, M or G (256M)"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use K, M or G)")),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes == 0 {
        return Err("the spool size must be above zero".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::Auth;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        push: PushArgs,
    }

    fn args(list: &[&str]) -> PushArgs {
        Cli::try_parse_from(std::iter::once("rprof").chain(list.iter().copied()))
            .unwrap()
            .push
    }

    #[test]
    fn no_push_means_no_config_and_push_flags_alone_are_an_error() {
        assert!(args(&[]).config("app").unwrap().is_none());
        let err = args(&["--label", "env=prod"])
            .config("app")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--label needs --push"), "{err}");
        let err = args(&["--push-format", "parca"])
            .config("app")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--push-format needs --push"), "{err}");
    }

    #[test]
    fn defaults_and_labels_resolve_into_the_config() {
        let config = args(&[
            "--push",
            "http://p:4040",
            "--spool-dir",
            "/s",
            "--label",
            "env=prod",
        ])
        .config("app")
        .unwrap()
        .unwrap();
        assert_eq!(config.url, "http://p:4040");
        assert_eq!(config.format, PushFormat::Pyroscope);
        assert_eq!(
            config.labels,
            [
                ("service_name".into(), "app".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert_eq!(config.spool_max_bytes, 256 << 20);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.spool_dir, PathBuf::from("/s"));

        let config = args(&[
            "--push=https://parca:7070",
            "--push-format=parca",
            "--label",
            "service_name=api,env=prod",
            "--label",
            "region=eu",
            "--spool-dir=/s",
            "--spool-max=1G",
            "--push-timeout=3",
        ])
        .config("app")
        .unwrap()
        .unwrap();
        assert_eq!(config.format, PushFormat::Parca);
        let names: Vec<&str> = config.labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["service_name", "env", "region"]);
        assert_eq!(config.labels[0].1, "api");
        assert_eq!(config.spool_max_bytes, 1 << 30);
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.ca_file, None);

        let config = args(&[
            "--push=https://pyroscope:4040",
            "--push-format=pyroscope-push",
            "--push-ca-file=/etc/ca.pem",
            "--spool-dir=/s",
        ])
        .config("app")
        .unwrap()
        .unwrap();
        assert_eq!(config.format, PushFormat::PyroscopePush);
        assert_eq!(config.ca_file, Some(PathBuf::from("/etc/ca.pem")));

        let twice = args(&[
            "--push=http://h",
            "--spool-dir=/s",
            "--label=a=1",
            "--label=a=2",
        ]);
        assert!(twice
            .config("app")
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn the_token_comes_from_the_file_flag() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok\n").unwrap();
        let config = args(&[
            "--push=http://h",
            "--spool-dir=/s",
            "--push-token-file",
            token.to_str().unwrap(),
        ])
        .config("app")
        .unwrap()
        .unwrap();
        assert_eq!(config.auth, Some(Auth::Bearer("tok".into())));
        let both = [
            "--push=http://h",
            "--push-token-file=a",
            "--push-basic-auth-file=b",
        ];
        assert!(Cli::try_parse_from(std::iter::once("rprof").chain(both)).is_err());
    }

    #[test]
    fn the_flags_fit_beside_record_flags() {
        // What the merge will do: no id or flag may clash.
        #[derive(Parser, Debug)]
        struct Record {
            #[command(flatten)]
            record: crate::cli::RecordArgs,
            #[command(flatten)]
            push: PushArgs,
        }
        use clap::CommandFactory;
        Record::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        for (text, bytes) in [
            ("1000", 1000),
            ("512K", 512 << 10),
            ("256M", 256 << 20),
            ("256MiB", 256 << 20),
            ("256mb", 256 << 20),
            ("2G", 2 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in ["", "M", "12Q", "0", "99999999999T"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_default_spool_follows_root_xdg_then_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        assert_eq!(
            default_spool_dir(true, env(&[])).unwrap(),
            PathBuf::from("/var/spool/rprof")
        );
        assert_eq!(
            default_spool_dir(false, env(&[("XDG_STATE_HOME", "/st"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/st/rprof/spool")
        );
        assert_eq!(
            default_spool_dir(false, env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.local/state/rprof/spool")
        );
        assert!(default_spool_dir(false, env(&[])).is_err());
    }
}
