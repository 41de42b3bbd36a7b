//! Credentials for the push endpoint, read from a file or the environment
//! (never from the command line, where `ps` shows them to every user).

use std::fmt;
use std::path::Path;

use super::PushError;

/// Environment variable holding a bearer token.
pub const TOKEN_ENV: &str = "RPROF_PUSH_TOKEN";
/// Environment variables holding a basic-auth user and password.
pub const USER_ENV: &str = "RPROF_PUSH_USER";
pub const PASSWORD_ENV: &str = "RPROF_PUSH_PASSWORD";

/// How requests authenticate. `Debug` prints no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer TOKEN` (Grafana Cloud, Polar Signals Cloud).
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: <redacted> }}")
            }
        }
    }
}

impl Auth {
    /// The `Authorization` header's value.
    pub fn header_value(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
        }
    }
}

/// The credentials: `token_file` (a bearer token) or `basic_file`
/// (`user:password`), else $RPROF_PUSH_TOKEN, else $RPROF_PUSH_USER with
/// $RPROF_PUSH_PASSWORD; `None` when none is given.
pub fn read_auth(
    token_file: Option<&Path>,
    basic_file: Option<&Path>,
) -> Result<Option<Auth>, PushError> {
    read_auth_from(token_file, basic_file, |name| std::env::var(name).ok())
}

/// [`read_auth`] with the environment as a function, so tests need not
/// change the process's real one.
pub(crate) fn read_auth_from(
    token_file: Option<&Path>,
    basic_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Auth>, PushError> {
    let bad = |source: String| PushError::Auth(source);
    match (token_file, basic_file) {
        (Some(_), Some(_)) => Err(bad(
            "give a token file or a basic-auth file, not both".into()
        )),
        (Some(path), None) => {
            let token = secret_file(path)?;
            checked_token(&token, &path.display().to_string()).map(|t| Some(Auth::Bearer(t)))
        }
        (None, Some(path)) => {
            let text = secret_file(path)?;
            let (user, password) = text.split_once(':').ok_or_else(|| {
                bad(format!(
                    "{}: expected `user:password` on one line",
                    path.display()
                ))
            })?;
            basic(user, password, &path.display().to_string()).map(Some)
        }
        (None, None) => {
            let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
            if let Some(token) = nonempty(TOKEN_ENV) {
                return checked_token(token.trim(), TOKEN_ENV).map(|t| Some(Auth::Bearer(t)));
            }
            match (nonempty(USER_ENV), nonempty(PASSWORD_ENV)) {
                (Some(user), Some(password)) => basic(&user, &password, USER_ENV).map(Some),
                (Some(_), None) => Err(bad(format!("{USER_ENV} is set but {PASSWORD_ENV} is not"))),
                (None, Some(_)) => Err(bad(format!("{PASSWORD_ENV} is set but {USER_ENV} is not"))),
                (None, None) => Ok(None),
            }
        }
    }
}

/// A secret file's content without the trailing newline. The error names
/// the file, never its content.
fn secret_file(path: &Path) -> Result<String, PushError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PushError::Auth(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// A token that fits in one header line.
fn checked_token(token: &str, source: &str) -> Result<String, PushError> {
    if token.is_empty() {
        return Err(PushError::Auth(format!("{source}: the token is empty")));
    }
    if token.chars().any(|c| c.is_control()) {
        return Err(PushError::Auth(format!(
            "{source}: the token has a control character (several lines?)"
        )));
    }
    Ok(token.to_string())
}

fn basic(user: &str, password: &str, source: &str) -> Result<Auth, PushError> {
    if user.is_empty() || user.contains(':') {
        return Err(PushError::Auth(format!(
            "{source}: the user is empty or has a `:`"
        )));
    }
    if format!("{user}{password}").chars().any(|c| c.is_control()) {
        return Err(PushError::Auth(format!(
            "{source}: the user or password has a control character"
        )));
    }
    Ok(Auth::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Standard base64 with padding (RFC 4648), for the basic-auth header
/// (one short string: not worth a crate).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        let auth = Auth::Basic {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(auth.header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn token_and_basic_files_are_read_without_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let basic_file = dir.path().join("basic");
        std::fs::write(&basic_file, "me:pa:ss\n").unwrap();
        assert_eq!(
            read_auth_from(Some(&token), None, env(&[])).unwrap(),
            Some(Auth::Bearer("s3cret".into()))
        );
        assert_eq!(
            read_auth_from(None, Some(&basic_file), env(&[])).unwrap(),
            Some(Auth::Basic {
                user: "me".into(),
                password: "pa:ss".into()
            })
        );
        assert!(read_auth_from(Some(&token), Some(&basic_file), env(&[])).is_err());
    }

    #[test]
    fn files_win_over_the_environment_which_is_read_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "from-file").unwrap();
        let vars = env(&[(TOKEN_ENV, "from-env")]);
        assert_eq!(
            read_auth_from(Some(&token), None, &vars).unwrap(),
            Some(Auth::Bearer("from-file".into()))
        );
        assert_eq!(
            read_auth_from(None, None, &vars).unwrap(),
            Some(Auth::Bearer("from-env".into()))
        );
        let basic_env = env(&[(USER_ENV, "u"), (PASSWORD_ENV, "p")]);
        assert_eq!(
            read_auth_from(None, None, basic_env).unwrap(),
            Some(Auth::Basic {
                user: "u".into(),
                password: "p".into()
            })
        );
        assert!(read_auth_from(None, None, env(&[(USER_ENV, "u")])).is_err());
        assert_eq!(
            read_auth_from(None, None, env(&[(TOKEN_ENV, "")])).unwrap(),
            None
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_or_errors() {
        let bearer = Auth::Bearer("tok-SECRET".into());
        let basic = Auth::Basic {
            user: "me".into(),
            password: "pw-SECRET".into(),
        };
        for text in [format!("{bearer:?}"), format!("{basic:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("basic");
        std::fs::write(&file, "no-colon-SECRET").unwrap();
        let err = read_auth_from(None, Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("SECRET") && err.contains("user:password"),
            "{err}"
        );
        std::fs::write(&file, "two\nSECRET-lines").unwrap();
        let err = read_auth_from(Some(&file), None, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
